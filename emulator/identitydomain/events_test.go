package identitydomain_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// webhook is an httptest receiver of events that checks Basic auth and can
// be told to fail.
type webhook struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	ids      []string
	failNext int
	attempts int
	badAuth  int
}

func newWebhook(t *testing.T) *webhook {
	return newWebhookOn(t, nil)
}

// newWebhookOn serves the webhook on ln, or on a new listener if ln is nil.
func newWebhookOn(t *testing.T, ln net.Listener) *webhook {
	w := &webhook{}
	w.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.attempts++
		if u, p, ok := r.BasicAuth(); !ok || u != "ons" || p != "hook-pass" {
			w.badAuth++
			rw.Header().Set("WWW-Authenticate", "Basic")
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-OCI-NS-MessageId") == "" {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		if w.failNext > 0 {
			w.failNext--
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.bodies = append(w.bodies, body)
		w.ids = append(w.ids, r.Header.Get("X-OCI-NS-MessageId"))
		rw.WriteHeader(http.StatusOK)
	}))
	if ln != nil {
		w.Listener.Close()
		w.Listener = ln
	}
	w.Start()
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) events(t testing.TB) []identitydomain.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]identitydomain.Event, len(w.bodies))
	for i, b := range w.bodies {
		out[i] = decode(t, b)
	}
	return out
}

func (w *webhook) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.bodies)
}

func webhookConfig(url string) identitydomain.Config {
	cfg := baseConfig()
	cfg.EventsWebhook = identitydomain.EventsWebhook{URL: url, Username: "ons", Password: "hook-pass",
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	return cfg
}

func waitDelivered(t *testing.T, d *identitydomain.Domain, w *webhook, n int) {
	t.Helper()
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if got := w.count(); got < n {
			return fmt.Errorf("webhook has %d events, want %d (stats %+v)", got, n, d.EventStats())
		}
		if st := d.EventStats(); st.Pending != 0 {
			return fmt.Errorf("%d events pending", st.Pending)
		}
		return nil
	})
}

func TestEventsFromSDKChanges(t *testing.T) {
	w := newWebhook(t)
	d := start(t, webhookConfig(w.URL))
	c := newSDK(t, d)
	ctx := context.Background()

	mkUser := func(name string) string {
		r, err := c.CreateUser(ctx, identitydomains.CreateUserRequest{User: identitydomains.User{
			Schemas: []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, UserName: common.String(name),
			DisplayName: common.String(strings.ToUpper(name))}})
		if err != nil {
			t.Fatal(err)
		}
		return *r.Id
	}
	u1, u2 := mkUser("ann"), mkUser("ben")
	g, err := c.CreateGroup(ctx, identitydomains.CreateGroupRequest{Group: identitydomains.Group{
		Schemas: []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, DisplayName: common.String("crew")}})
	if err != nil {
		t.Fatal(err)
	}
	gid := *g.Id
	_, err = c.PatchGroup(ctx, identitydomains.PatchGroupRequest{GroupId: &gid, PatchOp: identitydomains.PatchOp{
		Schemas: []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		Operations: []identitydomains.Operations{{Op: identitydomains.OperationsOpAdd, Path: common.String("members"),
			Value: anyValue([]any{map[string]any{"value": u1, "type": "User"}, map[string]any{"value": u2, "type": "User"}})}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PatchGroup(ctx, identitydomains.PatchGroupRequest{GroupId: &gid, PatchOp: identitydomains.PatchOp{
		Schemas:    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		Operations: []identitydomains.Operations{{Op: identitydomains.OperationsOpRemove, Path: common.String(`members[value eq "` + u2 + `"]`)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PatchUser(ctx, identitydomains.PatchUserRequest{UserId: &u1, PatchOp: identitydomains.PatchOp{
		Schemas: []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		Operations: []identitydomains.Operations{
			{Op: identitydomains.OperationsOpReplace, Path: common.String("active"), Value: anyValue(false)},
			{Op: identitydomains.OperationsOpReplace, Path: common.String("title"), Value: anyValue("Captain")},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteGroup(ctx, identitydomains.DeleteGroupRequest{GroupId: &gid}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteUser(ctx, identitydomains.DeleteUserRequest{UserId: &u2}); err != nil {
		t.Fatal(err)
	}

	want := []string{"createuser", "createuser", "creategroup", "updategroup", "addusertogroup", "addusertogroup",
		"updategroup", "removeuserfromgroup", "updateuser", "deactivateuser", "deletegroup", "deleteuser"}
	waitDelivered(t, d, w, len(want))
	evs := w.events(t)
	var types []string
	for _, ev := range evs {
		types = append(types, strings.TrimPrefix(ev.EventType, "com.oraclecloud.identitycontrolplane."))
	}
	if !slices.Equal(types, want) {
		t.Fatalf("event types = %v, want %v", types, want)
	}
	cfg := d.Config()
	ids := map[string]bool{}
	for i, ev := range evs {
		det := ev.Data.AdditionalDetails
		if ev.CloudEventsVersion != "0.1" || ev.EventTypeVersion != "2.0" || ev.ContentType != "application/json" ||
			ev.Source == "" || !timeRE.MatchString(ev.EventTime) || len(ev.EventID) != 36 || ids[ev.EventID] {
			t.Errorf("event %d envelope = %+v", i, ev)
		}
		ids[ev.EventID] = true
		if ev.Data.CompartmentID != cfg.CompartmentOCID || ev.Extensions.CompartmentID != cfg.CompartmentOCID {
			t.Errorf("event %d compartment = %s / %s", i, ev.Data.CompartmentID, ev.Extensions.CompartmentID)
		}
		if det.ActorID != clientID || det.ActorName != clientName || det.ActorType != "Client" ||
			det.DomainID != cfg.DomainID || det.DomainName != "src" {
			t.Errorf("event %d actor/domain = %+v", i, det)
		}
	}
	add := evs[4].Data.AdditionalDetails
	if add.EventID != "admin.group.add.member.success" || add.AdminResourceID != gid || add.AdminResourceName != "crew" ||
		add.AdminResourceType != "Group" || add.AdminRefResourceID != u1 || add.AdminRefResourceName != "ann" ||
		add.AdminRefResourceType != "User" || evs[4].Data.ResourceName != "crew" || evs[4].Data.ResourceID != *g.Ocid {
		t.Errorf("addusertogroup = %+v", evs[4].Data)
	}
	if evs[5].Data.AdditionalDetails.AdminRefResourceID != u2 {
		t.Errorf("second addusertogroup is for %s", evs[5].Data.AdditionalDetails.AdminRefResourceID)
	}
	upd := evs[3].Data.AdditionalDetails.AdminValuesAdded.(map[string]any)
	if members, _ := upd["members"].([]any); len(members) != 2 {
		t.Errorf("updategroup adminValuesAdded = %v", upd)
	}
	rm := evs[7].Data.AdditionalDetails
	if rm.EventID != "admin.group.remove.member.success" || rm.AdminRefResourceID != u2 || rm.AdminResourceID != gid {
		t.Errorf("removeuserfromgroup = %+v", rm)
	}
	uu := evs[8].Data.AdditionalDetails
	if uu.EventID != "admin.user.update.success" || uu.AdminValuesAdded.(map[string]any)["title"] != "Captain" {
		t.Errorf("updateuser = %+v", uu)
	}
	if da := evs[9].Data.AdditionalDetails; da.EventID != "admin.user.deactivated.success" || da.AdminResourceID != u1 {
		t.Errorf("deactivateuser = %+v", da)
	}
	if cu := evs[0].Data.AdditionalDetails.AdminValuesAdded.(map[string]any); cu["userName"] != "ann" || cu["id"] != u1 {
		t.Errorf("createuser adminValuesAdded = %v", cu)
	}
	if st := d.EventStats(); st.Emitted != int64(len(want)) || st.Delivered != int64(len(want)) || st.Failed != 0 {
		t.Errorf("stats = %+v", st)
	}
	w.mu.Lock()
	if w.badAuth != 0 {
		t.Errorf("%d deliveries without the right Basic auth", w.badAuth)
	}
	w.mu.Unlock()
}

func TestEventsRetriedUntilDelivered(t *testing.T) {
	w := newWebhook(t)
	w.failNext = 4
	d := start(t, webhookConfig(w.URL))
	tok := getToken(t, d)
	for i := range 3 {
		mustCreate(t, d, tok, "Users", userBody(fmt.Sprintf("retry%d@example.com", i)))
	}
	waitDelivered(t, d, w, 3)
	var names []string
	for _, ev := range w.events(t) {
		names = append(names, ev.Data.ResourceName)
	}
	if !slices.Equal(names, []string{"retry0@example.com", "retry1@example.com", "retry2@example.com"}) {
		t.Errorf("delivered out of order: %v", names)
	}
	if st := d.EventStats(); st.Failed != 4 || st.Delivered != 3 || st.Pending != 0 {
		t.Errorf("stats = %+v, want 4 failed attempts and 3 delivered", st)
	}
}

func TestEventsRetryNetworkErrors(t *testing.T) {
	// A webhook that is down, then comes up on the same address.
	w := newWebhook(t)
	addr := w.Listener.Addr().String()
	w.Close()
	d := start(t, webhookConfig("http://"+addr))
	mustCreate(t, d, getToken(t, d), "Users", userBody("late@example.com"))
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if st := d.EventStats(); st.Failed < 2 {
			return fmt.Errorf("stats %+v: want failed attempts", st)
		}
		return nil
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	w2 := newWebhookOn(t, ln)
	waitDelivered(t, d, w2, 1)
}

func TestEventsDuplicateAndDropFaults(t *testing.T) {
	w := newWebhook(t)
	cfg := webhookConfig(w.URL)
	cfg.Faults.DuplicateEvents = 1
	d := start(t, cfg)
	tok := getToken(t, d)
	mustCreate(t, d, tok, "Users", userBody("twice@example.com"))
	waitDelivered(t, d, w, 2)
	w.mu.Lock()
	if len(w.bodies) != 2 || string(w.bodies[0]) != string(w.bodies[1]) || w.ids[0] != w.ids[1] {
		t.Errorf("duplicate delivery: %d bodies, message ids %v", len(w.bodies), w.ids)
	}
	w.mu.Unlock()
	if st := d.EventStats(); st.Duplicated != 1 || st.Delivered != 2 || st.Emitted != 1 {
		t.Errorf("stats = %+v", st)
	}

	if err := d.SetFaults(identitydomain.Faults{DropEvents: 1}); err != nil {
		t.Fatal(err)
	}
	var hooked int
	d.OnEvent(func([]byte) { hooked++ })
	for i := range 5 {
		mustCreate(t, d, tok, "Users", userBody(fmt.Sprintf("dropped%d@example.com", i)))
	}
	if st := d.EventStats(); st.Dropped != 5 || st.Pending != 0 || st.Emitted != 6 {
		t.Errorf("stats after drops = %+v", st)
	}
	if hooked != 5 {
		t.Errorf("hooks saw %d events; drops apply to the webhook only", hooked)
	}

	// Half of the events, deterministically by seed.
	counts := func(seed uint64) (delivered, dropped int64) {
		w := newWebhook(t)
		cfg := webhookConfig(w.URL)
		cfg.Faults = identitydomain.Faults{DropEvents: 0.5, Seed: seed}
		d := start(t, cfg)
		tok := getToken(t, d)
		for i := range 40 {
			mustCreate(t, d, tok, "Users", userBody(fmt.Sprintf("u%d", i)))
		}
		st := d.EventStats()
		waitDelivered(t, d, w, int(40-st.Dropped))
		return d.EventStats().Delivered, st.Dropped
	}
	del1, drop1 := counts(7)
	del2, drop2 := counts(7)
	if del1 != del2 || drop1 != drop2 || drop1 == 0 || del1 == 0 || del1+drop1 != 40 {
		t.Errorf("seeded drops not deterministic or not partial: %d/%d vs %d/%d", del1, drop1, del2, drop2)
	}
}

func TestEventsHookIsSynchronousAndOrdered(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	var mu sync.Mutex
	var seen []string
	d.OnEvent(func(b []byte) {
		ev := decode(t, b)
		mu.Lock()
		seen = append(seen, ev.Data.ResourceName)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mustCreate(t, d, tok, "Users", userBody(fmt.Sprintf("c%02d", i)))
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 20 {
		t.Fatalf("hook saw %d events before the responses, want 20", len(seen))
	}
	// Emission order is commit order: creation order of the users.
	var created []string
	for _, u := range d.Users() {
		created = append(created, u.UserName)
	}
	if !slices.Equal(seen, created) {
		t.Errorf("events %v, commits %v", seen, created)
	}
	if d.EventStats().Pending != 0 {
		t.Error("events pending without a webhook")
	}
}

func TestEventGolden(t *testing.T) {
	clock := identitydomain.NewManualClock(t0)
	cfg := baseConfig()
	cfg.EventValuesAsString = false
	d := start(t, cfg, identitydomain.WithClock(clock), identitydomain.WithRandomSeed(42))
	var got []json.RawMessage
	d.OnEvent(func(b []byte) { got = append(got, b) })
	tok := getToken(t, d)
	uid := mustCreate(t, d, tok, "Users", userBody("golden@example.com", "displayName", "Golden User"))
	gid := mustCreate(t, d, tok, "Groups", groupBody("goldens"))
	r := call(t, http.MethodPatch, d.URL()+"/admin/v1/Groups/"+gid, tok,
		patchBody(op("add", "members", []any{map[string]any{"value": uid, "type": "User"}})))
	if r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	// Addresses vary with the port; everything else is deterministic.
	out, _ := json.MarshalIndent(got, "", "  ")
	out = []byte(strings.ReplaceAll(string(out), d.URL(), "http://emulator"))
	golden(t, "events.golden.json", out)

	// The string form of adminValues* (the /AuditEvents shape) parses back to the same object.
	cfg.EventValuesAsString = true
	cfg.Name = "strings"
	d2 := start(t, cfg)
	var ev identitydomain.Event
	d2.OnEvent(func(b []byte) { ev = decode(t, b) })
	mustCreate(t, d2, getToken(t, d2), "Users", userBody("s@example.com"))
	s, ok := ev.Data.AdditionalDetails.AdminValuesAdded.(string)
	var m map[string]any
	if !ok || json.Unmarshal([]byte(s), &m) != nil || m["userName"] != "s@example.com" {
		t.Errorf("adminValuesAdded as string = %#v", ev.Data.AdditionalDetails.AdminValuesAdded)
	}
}

// golden compares got with testdata/name; -update rewrites the file.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s missing; run go test -run %s -update", path, t.Name())
	}
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(got)) {
		t.Errorf("%s differs from the output; rerun with -update if the change is intended.\ngot:\n%s", path, got)
	}
}

func TestGroupMembershipEvents(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	var evs []identitydomain.Event
	d.OnEvent(func(b []byte) { evs = append(evs, decode(t, b)) })
	u1 := mustCreate(t, d, tok, "Users", userBody("m1"))
	u2 := mustCreate(t, d, tok, "Users", userBody("m2"))
	u3 := mustCreate(t, d, tok, "Users", userBody("m3"))
	type ev struct{ typ, ref string }
	take := func() []ev {
		var out []ev
		for _, e := range evs {
			out = append(out, ev{strings.TrimPrefix(e.EventType, "com.oraclecloud.identitycontrolplane."), e.Data.AdditionalDetails.AdminRefResourceID})
		}
		evs = nil
		return out
	}
	take()
	gid := mustCreate(t, d, tok, "Groups", groupBody("team", u1, u2))
	if got := take(); !slices.Equal(got, []ev{{"creategroup", ""}, {"addusertogroup", u1}, {"addusertogroup", u2}}) {
		t.Errorf("create with members: %v", got)
	}
	r := call(t, http.MethodPut, d.URL()+"/admin/v1/Groups/"+gid, tok, groupBody("team", u2, u3))
	if r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if got := take(); !slices.Equal(got, []ev{{"updategroup", ""}, {"removeuserfromgroup", u1}, {"addusertogroup", u3}}) {
		t.Errorf("PUT members: %v", got)
	}
	r = call(t, http.MethodPatch, d.URL()+"/admin/v1/Groups/"+gid, tok, patchBody(op("ADD", "members", []any{map[string]any{"value": u2}})))
	if r.status != 200 {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	if got := take(); len(got) != 0 {
		t.Errorf("no-op PATCH emitted %v", got)
	}
	call(t, http.MethodPatch, d.URL()+"/admin/v1/Groups/"+gid, tok, patchBody(op("remove", `members[value eq "`+u3+`"]`, nil),
		op("replace", "displayName", "team2")))
	if len(evs) > 0 {
		det := evs[0].Data.AdditionalDetails
		added, _ := det.AdminValuesAdded.(map[string]any)
		removed, _ := det.AdminValuesRemoved.(map[string]any)
		if added["displayName"] != "team2" || removed["displayName"] != "team" || removed["members"] == nil || added["members"] != nil {
			t.Errorf("updategroup values: added %v removed %v", added, removed)
		}
	}
	if got := take(); !slices.Equal(got, []ev{{"updategroup", ""}, {"removeuserfromgroup", u3}}) {
		t.Fatalf("PATCH remove+rename: %v", got)
	}
	call(t, http.MethodDelete, d.URL()+"/admin/v1/Users/"+u2, tok, nil)
	if got := take(); !slices.Equal(got, []ev{{"deleteuser", ""}}) {
		t.Errorf("delete member user: %v", got)
	}
	if ms, _ := d.Members(gid); len(ms) != 0 {
		t.Errorf("deleted user still a member: %v", ms)
	}
}
