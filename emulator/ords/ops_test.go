package ords_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iamflow/iamflow/emulator/ords"
	"github.com/iamflow/iamflow/internal/testutil"
)

// TestPoolExhausted: with the default pool of 2, a third concurrent request
// gets 503 and runs nothing.
func TestPoolExhausted(t *testing.T) {
	v := start(t, baseConfig())
	if err := v.emu.SetFaults(alias, ords.Faults{Latency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.hold(ctx, `CREATE ROLE "HELD"`)
		}()
	}
	testutil.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := v.emu.InUse(alias); n != 2 {
			return fmt.Errorf("%d connections in use", n)
		}
		return nil
	})
	status, out := v.post(alias, basic(basicUser, basicPass), "application/sql", []byte(`CREATE ROLE "X"`))
	if status != http.StatusServiceUnavailable || ordsErrorBody(t, out) != "ServiceUnavailable" {
		t.Fatalf("third request: %d %s", status, out)
	}
	if s := v.emu.Stats(alias); s.PoolExhausted != 1 || s.InUse != 2 {
		t.Errorf("stats %+v", s)
	}
	cancel()
	wg.Wait()
	testutil.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := v.emu.InUse(alias); n != 0 {
			return fmt.Errorf("%d connections still in use", n)
		}
		return nil
	})
	if st := v.emu.Statements(alias); len(st) != 0 {
		t.Errorf("statements ran: %v", st)
	}
	if err := v.emu.SetFaults(alias, ords.Faults{}); err != nil {
		t.Fatal(err)
	}
	v.ok(`CREATE ROLE "AFTER"`)
}

// TestPoolWait: a request waits PoolWait for a connection to come free.
func TestPoolWait(t *testing.T) {
	cfg := baseConfig()
	cfg.Databases[0].PoolSize = 1
	cfg.Databases[0].PoolWait = 10 * time.Second
	v := start(t, cfg)
	_ = v.emu.SetFaults(alias, ords.Faults{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.hold(ctx, `CREATE ROLE "A"`)
	}()
	testutil.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if v.emu.InUse(alias) != 1 {
			return errors.New("first request not holding the connection")
		}
		return nil
	})
	_ = v.emu.SetFaults(alias, ords.Faults{})
	second := make(chan int, 1)
	go func() {
		status, _ := v.post(alias, basic(basicUser, basicPass), "application/sql", []byte(`CREATE ROLE "B"`))
		second <- status
	}()
	cancel() // frees the connection; the waiting request takes it
	<-done
	if status := <-second; status != 200 {
		t.Errorf("waiting request: %d", status)
	}
}

func TestFaults(t *testing.T) {
	v := start(t, baseConfig())
	sqlBody := []byte(`{"statementText":"CREATE ROLE \"R1\""}`)
	au := basic(basicUser, basicPass)

	_ = v.emu.SetFaults(alias, ords.Faults{Outage: true})
	if status, out := v.post(alias, au, "application/json", sqlBody); status != 503 || ordsErrorBody(t, out) != "ServiceUnavailable" {
		t.Errorf("outage sql: %d %s", status, out)
	}
	if status, _ := v.tokenReq(alias, clientID, clientSecret, "client_credentials"); status != 503 {
		t.Errorf("outage token: %d", status)
	}

	_ = v.emu.SetFaults(alias, ords.Faults{ErrorRate: 1})
	if status, _ := v.post(alias, au, "application/json", sqlBody); status != 503 {
		t.Errorf("errorRate 1: %d", status)
	}
	if len(v.emu.Statements(alias)) != 0 || len(v.emu.Roles(alias)) != 0 {
		t.Error("a 503 ran statements")
	}

	_ = v.emu.SetFaults(alias, ords.Faults{ErrorRate: 0.5, Seed: 7})
	got := map[int]int{}
	for range 40 {
		status, _ := v.post(alias, au, "application/json", []byte(`{"statementText":"SELECT role FROM dba_roles"}`))
		got[status]++
	}
	if got[200] == 0 || got[503] == 0 || got[200]+got[503] != 40 {
		t.Errorf("errorRate 0.5: %v", got)
	}

	_ = v.emu.SetFaults(alias, ords.Faults{BusyNext: 2})
	r := v.sql(alias, request{StatementText: `CREATE ROLE "R1"; CREATE ROLE "R2"; CREATE ROLE "R3"`})
	codes := []int{r.Items[0].ErrorCode, r.Items[1].ErrorCode, r.Items[2].ErrorCode}
	if fmt.Sprint(codes) != "[54 54 0]" || !strings.HasPrefix(r.Items[0].ErrorDetails, "ORA-00054: resource busy") {
		t.Errorf("busyNext: %v %q", codes, r.Items[0].ErrorDetails)
	}
	if f := v.emu.Faults(alias); f.BusyNext != 0 {
		t.Errorf("busyNext left %d", f.BusyNext)
	}
	if roles := v.emu.Roles(alias); len(roles) != 1 || roles[0].Name != "R3" {
		t.Errorf("roles %+v", roles)
	}
	if err := v.emu.SetFaults(alias, ords.Faults{ErrorRate: 2}); err == nil {
		t.Error("errorRate 2 accepted")
	}
	if err := v.emu.SetFaults("nosuch", ords.Faults{}); err == nil {
		t.Error("unknown alias accepted")
	}
}

func TestControl(t *testing.T) {
	v := start(t, baseConfig())
	ctl := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, v.srv.URL+path, strings.NewReader(body))
		return do(t, req)
	}
	if status, out := ctl("POST", "/_emulator/faults?db=pdb1", `{"busyNext":1,"latency":"5ms"}`); status != 200 || !strings.Contains(string(out), `"latency": "5ms"`) {
		t.Fatalf("set faults: %d %s", status, out)
	}
	if f := v.emu.Faults(alias); f.BusyNext != 1 || f.Latency != 5*time.Millisecond {
		t.Errorf("faults %+v", f)
	}
	if status, _ := ctl("POST", "/_emulator/faults", `{"latency":0}`); status != 200 || v.emu.Faults(alias).Latency != 0 || v.emu.Faults(alias).BusyNext != 1 {
		t.Errorf("partial update: %+v", v.emu.Faults(alias))
	}
	if status, _ := ctl("POST", "/_emulator/faults", `{"errorRate":3}`); status != 400 {
		t.Errorf("bad faults: %d", status)
	}
	seed, _ := json.Marshal(ords.SeedData{Databases: []ords.DatabaseSeed{{Alias: alias, Users: []ords.User{{Username: "ZED"}}}}})
	if status, out := ctl("POST", "/_emulator/seed", string(seed)); status != 200 {
		t.Fatalf("seed: %d %s", status, out)
	}
	if status, out := ctl("GET", "/_emulator/users?db=pdb1", ""); status != 200 || !strings.Contains(string(out), `"username": "ZED"`) {
		t.Errorf("users: %d %s", status, out)
	}
	v.one(`DROP USER "ZED"`) // busy
	if status, out := ctl("GET", "/_emulator/statements?db=pdb1", ""); status != 200 || !strings.Contains(string(out), `DROP USER \"ZED\"`) {
		t.Errorf("statements: %d %s", status, out)
	}
	if status, out := ctl("GET", "/_emulator/stats", ""); status != 200 || !strings.Contains(string(out), `"pdb1"`) {
		t.Errorf("stats: %d %s", status, out)
	}
	if status, _ := ctl("POST", "/_emulator/reset", ""); status != 200 || len(v.emu.Users(alias)) != 0 || len(v.emu.Statements(alias)) != 0 || v.emu.Faults(alias).BusyNext != 0 {
		t.Errorf("reset: %d", status)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/_emulator/nope"}, {"GET", "/_emulator/users?db=nosuch"}} {
		if status, _ := ctl(c.method, c.path, ""); status != 404 {
			t.Errorf("%s %s: %d", c.method, c.path, status)
		}
	}
	if status, _ := ctl("GET", "/_emulator/users", ""); status != 400 {
		t.Errorf("users without db: %d", status)
	}
}

func TestSeed(t *testing.T) {
	v := start(t, baseConfig())
	if err := v.emu.SeedFile("testdata/seed.yaml"); err != nil {
		t.Fatal(err)
	}
	users := v.emu.Users(alias)
	if len(users) != 3 || users[0].Username != "ALICE" || users[0].Roles[0] != "DBAS" || users[2].AccountStatus != "LOCKED" ||
		!users[1].Created.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("users %+v", users)
	}
	if len(v.emu.Statements(alias)) != 0 {
		t.Error("seeding logged statements")
	}
	it := v.one(q1, vbind(1, "APP"))
	if it.ResultSet.Items[0]["username"] != "APP" {
		t.Errorf("seeded user not queryable: %+v", it)
	}
	bad := []string{
		`{"databases":[{"alias":"nosuch"}]}`,
		`{"databases":[{"alias":"pdb1","users":[{"username":"ALICE"}]}]}`,
		`{"databases":[{"alias":"pdb1","users":[{"username":"NEW","roles":["NOPE"]}]}]}`,
		`{"databases":[{"alias":"pdb1","users":[{"username":"NEW","accountStatus":"EXPIRED"}]}]}`,
		`{"databases":[{"alias":"pdb1","users":[{"username":"NEW","privileges":["DBA"]}]}]}`,
		`{"databases":[{"alias":"pdb1","users":[{"username":"NEW2"},{"username":"DBAS"}]}]}`,
		`{"databases":[{"alias":"pdb1","bogus":1}]}`,
		"databases: [",
	}
	for _, b := range bad {
		if err := v.emu.Seed(strings.NewReader(b)); err == nil {
			t.Errorf("seed %s accepted", b)
		}
	}
	if len(v.emu.Users(alias)) != 3 {
		t.Errorf("failed seeds changed the catalog: %+v", v.emu.Users(alias))
	}
	// a seed may grant roles that exist already
	if err := v.emu.Seed(strings.NewReader("databases:\n  - alias: pdb1\n    users: [{username: NEW, roles: [APP_READ]}]\n")); err != nil {
		t.Fatal(err)
	}
	v.emu.Reset()
	if len(v.emu.Users(alias)) != 0 {
		t.Error("Reset kept seeded users")
	}
}

func TestConfigValidation(t *testing.T) {
	ok := baseConfig().Databases[0]
	cases := map[string]ords.Config{
		"no databases":    {},
		"bad alias":       {Databases: []ords.Database{{Alias: "Bad Alias", BasicUser: "u", BasicPassword: "p"}}},
		"duplicate alias": {Databases: []ords.Database{ok, ok}},
		"no auth":         {Databases: []ords.Database{{Alias: "a"}}},
		"half client":     {Databases: []ords.Database{{Alias: "a", ClientID: "x"}}},
		"negative pool":   {Databases: []ords.Database{{Alias: "a", BasicUser: "u", BasicPassword: "p", PoolSize: -1}}},
		"bad seed":        {Databases: []ords.Database{{Alias: "a", BasicUser: "u", BasicPassword: "p", Users: []ords.User{{Username: ""}}}}},
		"bad faults":      {Databases: []ords.Database{{Alias: "a", BasicUser: "u", BasicPassword: "p", Faults: ords.Faults{ErrorRate: -1}}}},
		"negative ttl":    {TokenTTL: -time.Second, Databases: []ords.Database{ok}},
	}
	for name, cfg := range cases {
		_, err := ords.New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), clientSecret) || strings.Contains(err.Error(), basicPass) {
			t.Errorf("%s: error leaks a secret: %v", name, err)
		}
	}
	e, err := ords.New(baseConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := e.Config()
	if c.TokenTTL != time.Hour || c.MaxRows != 10000 || c.Databases[0].PoolSize != 2 {
		t.Errorf("defaults %+v", c)
	}
}

// TestSeedNamesShareOneNamespace: seeded roles and users are named 1 to 128
// bytes and no name is both, as in Oracle; each problem is named.
func TestSeedNamesShareOneNamespace(t *testing.T) {
	db := baseConfig().Databases[0]
	db.Roles = []ords.Role{{Name: " "}, {Name: "APP"}, {Name: "APP"}}
	db.Users = []ords.User{{Username: "APP"}, {Username: strings.Repeat("U", 129)}, {Username: "BOB"}, {Username: "BOB"}}
	_, err := ords.New(ords.Config{Databases: []ords.Database{db}})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`roles[0]: name " ": want 1 to 128 bytes`,
		`roles[2]: name "APP" conflicts with another user or role`,
		`users[0]: username "APP" conflicts with another user or role`,
		`users[1]: username "` + strings.Repeat("U", 129) + `": want 1 to 128 bytes`,
		`users[3]: username "BOB" conflicts with another user or role`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "roles[1]") || strings.Contains(err.Error(), "users[2]") {
		t.Errorf("a first use of a name is blamed:\n%v", err)
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- ords.Run(ctx, baseConfig(), "127.0.0.1:0", nil, func(e *ords.Emulator) { urls <- e.BaseURL(alias) })
	}()
	base := <-urls
	req, _ := http.NewRequest(http.MethodPost, base+"/_/sql", bytes.NewReader([]byte("SELECT role FROM dba_roles")))
	req.Header.Set("Content-Type", "application/sql")
	req.SetBasicAuth(basicUser, basicPass)
	if status, out := do(t, req); status != 200 {
		t.Errorf("run: %d %s", status, out)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
}
