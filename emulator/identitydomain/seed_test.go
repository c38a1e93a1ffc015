package identitydomain_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/testutil"
)

func TestSeedFiles(t *testing.T) {
	for _, file := range []string{"seed.yaml", "seed.json"} {
		t.Run(file, func(t *testing.T) {
			d := start(t, baseConfig())
			if err := d.SeedFile(filepath.Join("testdata", file)); err != nil {
				t.Fatal(err)
			}
			st := d.Stats()
			if st.Users != 4 || st.Groups != 3 || st.Memberships != 5 || st.Events.Emitted != 0 {
				t.Fatalf("stats %+v", st)
			}
			alice, ok := d.UserByName("ALICE@example.com")
			if !ok || alice.ID != "a11ce000000000000000000000000001" || alice.DisplayName != "Alice Liddell" || !alice.Active {
				t.Fatalf("alice = %+v", alice)
			}
			bob, _ := d.UserByName("bob@example.com")
			if bob.Active || !bob.Federated || bob.Capabilities["canUseApiKeys"] || !bob.Capabilities["canUseConsole"] {
				t.Errorf("bob = %+v", bob)
			}
			admins, _ := d.GroupByName("admins")
			if admins.Description != "Administrators" || admins.Members != 2 {
				t.Errorf("admins = %+v", admins)
			}
			ms, _ := d.Members(admins.ID)
			if ms[0].UserName != "alice@example.com" || ms[1].UserName != "bob@example.com" {
				t.Errorf("admins members %+v", ms)
			}
			if len(alice.Groups) != 2 {
				t.Errorf("alice groups %v", alice.Groups)
			}
			// Seeded data is served like any other.
			r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users/"+alice.ID+"?attributes=groups", getToken(t, d), nil)
			if r.status != 200 || len(r.json["groups"].([]any)) != 2 {
				t.Errorf("GET seeded user: %d %s", r.status, r.body)
			}
		})
	}
}

func TestSeedIsAllOrNothing(t *testing.T) {
	tests := []struct{ name, seed, want string }{
		{"duplicate user", "users: [{userName: a}, {userName: A}]", "duplicate userName"},
		{"existing user", "users: [{userName: existing}]", "duplicate userName"},
		{"duplicate id", "users: [{userName: a, id: x1}, {userName: b, id: x1}]", "duplicate id"},
		{"bad id", "users: [{userName: a, id: 'a/b'}]", "invalid id"},
		{"duplicate group, unknown member", "groups: [{displayName: g}, {displayName: G, members: [nobody]}]", "groups[1]: duplicate displayName G"},
		{"missing userName", "users: [{displayName: a}]", "userName"},
		{"unknown member", "users: [{userName: a}]\ngroups: [{displayName: g, members: [nobody]}]", `no user "nobody"`},
		{"unknown membership group", "users: [{userName: a}]\nmemberships: [{group: nope, user: a}]", `no group "nope"`},
		{"unknown field", "user: []", "unknown field"},
		{"not yaml", "users: [", "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := start(t, baseConfig())
			if err := d.Seed(strings.NewReader("users: [{userName: existing}]")); err != nil {
				t.Fatal(err)
			}
			err := d.Seed(strings.NewReader(tt.seed))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Seed error = %v, want %q", err, tt.want)
			}
			if st := d.Stats(); st.Users != 1 || st.Groups != 0 || st.Memberships != 0 {
				t.Errorf("a failed seed left %+v", st)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	gen := func(seed int64) *identitydomain.Domain {
		d, err := identitydomain.New(baseConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Generate(identitydomain.GenerateConfig{Users: 500, Groups: 40, Memberships: 3000, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b, c := gen(5), gen(5), gen(6)
	st := a.Stats()
	if st.Users != 500 || st.Groups != 40 || st.Memberships != 3000 {
		t.Fatalf("stats %+v", st)
	}
	fingerprint := func(d *identitydomain.Domain) string {
		var sb strings.Builder
		for _, u := range d.Users() {
			fmt.Fprintf(&sb, "%s %s %s %v %v\n", u.ID, u.OCID, u.UserName, u.Active, u.Groups)
		}
		for _, g := range d.Groups() {
			ms, _ := d.Members(g.ID)
			fmt.Fprintf(&sb, "%s %s %d %s\n", g.ID, g.DisplayName, g.Members, ms[0].MembershipOCID)
		}
		return sb.String()
	}
	if fingerprint(a) != fingerprint(b) {
		t.Error("same seed, different directories")
	}
	if fingerprint(a) == fingerprint(c) {
		t.Error("different seeds, same directory")
	}
	inactive := 0
	for _, u := range a.Users() {
		if !u.Active {
			inactive++
		}
		if !strings.HasPrefix(u.UserName, "user") || u.Attributes["emails"] == nil {
			t.Fatalf("user %+v", u)
		}
	}
	if inactive == 0 || inactive > 100 {
		t.Errorf("%d inactive users of 500", inactive)
	}
	for _, g := range a.Groups() {
		if g.Members != 75 {
			t.Errorf("group %s has %d members, want 75", g.DisplayName, g.Members)
		}
	}
	if err := a.Generate(identitydomain.GenerateConfig{Users: 1}); err == nil {
		t.Error("Generate over existing names succeeded")
	}
	for _, bad := range []identitydomain.GenerateConfig{{Users: -1}, {Users: 2, Groups: 1, Memberships: 3}, {Users: 1, Memberships: 1}} {
		d, _ := identitydomain.New(baseConfig())
		if err := d.Generate(bad); err == nil {
			t.Errorf("Generate(%+v) succeeded", bad)
		}
		d.Close()
	}
}

func TestGenerateLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large directory")
	}
	d, err := identitydomain.New(baseConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Generate(identitydomain.GenerateConfig{Users: 50000, Groups: 5000, Memberships: 200000, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Users != 50000 || st.Groups != 5000 || st.Memberships != 200000 {
		t.Fatalf("stats %+v", st)
	}
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	tok := getToken(t, d)
	// Indexed lookups and a full scan both answer.
	for _, q := range []string{`userName eq "user049999"`, `displayName co "zzz"`, `groups.value eq "nope"`} {
		r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users?count=1&filter="+strings.ReplaceAll(q, " ", "+"), tok, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
	}
}

func TestRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- identitydomain.Run(ctx, baseConfig(), addr, slog.New(slog.DiscardHandler)) }()
	testutil.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		resp, err := http.Get("http://" + addr + "/_emulator/stats")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := identitydomain.Run(context.Background(), identitydomain.Config{}, addr, nil); err == nil {
		t.Error("Run with an invalid config succeeded")
	}
	var ne *net.OpError
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	if err := identitydomain.Run(context.Background(), baseConfig(), busy.Addr().String(), nil); !errors.As(err, &ne) {
		t.Errorf("Run on a busy address: %v", err)
	}
}

func TestAccessorsAndReset(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	uid := mustCreate(t, d, tok, "Users", userBody("acc@example.com"))
	gid := mustCreate(t, d, tok, "Groups", groupBody("accs", uid))
	if u, ok := d.User(uid); !ok || u.UserName != "acc@example.com" || !slices.Equal(u.Groups, []string{gid}) {
		t.Errorf("User = %+v", u)
	}
	if g, ok := d.Group(gid); !ok || g.Members != 1 || g.Attributes["displayName"] != "accs" {
		t.Errorf("Group = %+v", g)
	}
	if _, ok := d.User("x"); ok {
		t.Error("User(unknown) found")
	}
	if _, ok := d.Members("x"); ok {
		t.Error("Members(unknown) found")
	}
	d.Reset()
	if len(d.Users()) != 0 || len(d.Groups()) != 0 || d.Stats().Memberships != 0 {
		t.Errorf("after Reset: %+v", d.Stats())
	}
	mustCreate(t, d, tok, "Users", userBody("acc@example.com"))
}
