package identitydomain_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/iamflow/iamflow/emulator/identitydomain"
)

func bulkBody(failOnErrors int, ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	b := map[string]any{"schemas": []any{identitydomain.SchemaBulkRequest}, "Operations": list}
	if failOnErrors > 0 {
		b["failOnErrors"] = failOnErrors
	}
	return b
}

func bulkOp(method, path, bulkID string, data any) map[string]any {
	m := map[string]any{"method": method, "path": path}
	if bulkID != "" {
		m["bulkId"] = bulkID
	}
	if data != nil {
		m["data"] = data
	}
	return m
}

// results returns the BulkResponse's operations.
func results(t *testing.T, r response) []map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("bulk answered %d: %s", r.status, r.body)
	}
	ops, _ := r.json["Operations"].([]any)
	out := make([]map[string]any, len(ops))
	for i, o := range ops {
		out[i], _ = o.(map[string]any)
	}
	return out
}

// One request creates users and a group whose members name them by bulkId,
// in order, with one result each and the events single requests emit.
func TestBulkCreatesAndResolvesBulkIDs(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	var emitted int
	d.OnEvent(func([]byte) { emitted++ })
	r := call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, bulkBody(0,
		bulkOp("POST", "/Users", "u1", userBody("ann@example.com")),
		bulkOp("POST", "/Users", "u2", userBody("bob@example.com")),
		bulkOp("POST", "/Groups", "g1", groupBody("ops", "bulkId:u1", "bulkId:u2")),
		bulkOp("PATCH", "/Users/bulkId:u2", "", patchBody(op("replace", "displayName", "Bob B"))),
		bulkOp("DELETE", "/Users/bulkId:u1", "", nil),
	))
	res := results(t, r)
	if len(res) != 5 {
		t.Fatalf("%d results, want 5: %s", len(res), r.body)
	}
	for i, want := range []string{"201", "201", "201", "200", "204"} {
		if res[i]["status"] != want {
			t.Errorf("operation %d: status %v, want %s (%v)", i, res[i]["status"], want, res[i]["response"])
		}
	}
	if res[0]["bulkId"] != "u1" || !strings.Contains(fmt.Sprint(res[0]["location"]), "/admin/v1/Users/") || res[0]["version"] == "" {
		t.Errorf("first result %v: want bulkId, location and version", res[0])
	}
	g, ok := d.GroupByName("ops")
	if !ok {
		t.Fatal("no group ops")
	}
	ms, _ := d.Members(g.ID)
	if len(ms) != 1 || ms[0].UserName != "bob@example.com" {
		t.Fatalf("members %v: want bob (ann was deleted)", ms)
	}
	if u, _ := d.UserByName("bob@example.com"); u.DisplayName != "Bob B" {
		t.Errorf("bob %+v: the PATCH by bulkId did not land", u)
	}
	// Each operation emitted what the single request would (2 users, 1
	// group, 2 memberships, 1 update, 1 delete).
	if emitted < 7 {
		t.Errorf("%d events emitted, want at least 7", emitted)
	}
	st := d.Stats()
	if st.Calls[identitydomain.OpBulk] != 1 || st.Calls[identitydomain.OpCreateUser] != 2 || st.BulkOperations != 5 {
		t.Errorf("calls %v, %d operations in Bulk: want one Bulk and its 5 operations counted under their own and as Bulk operations", st.Calls, st.BulkOperations)
	}
}

// failOnErrors stops the request after that many errors; an unresolvable
// bulkId fails its operation with 409; the others are unaffected.
func TestBulkErrors(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	r := call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, bulkBody(2,
		bulkOp("POST", "/Users", "a", userBody("a@example.com")),
		bulkOp("POST", "/Users", "dup", userBody("a@example.com")),       // 409 uniqueness
		bulkOp("POST", "/Groups", "g", groupBody("g", "bulkId:nowhere")), // 409 unresolved
		bulkOp("POST", "/Users", "never", userBody("never@example.com")), // not run
	))
	res := results(t, r)
	if len(res) != 3 {
		t.Fatalf("%d results, want 3 (stopped after 2 errors): %s", len(res), r.body)
	}
	if res[1]["status"] != "409" || res[2]["status"] != "409" {
		t.Errorf("statuses %v %v, want 409 and 409", res[1]["status"], res[2]["status"])
	}
	if !strings.Contains(fmt.Sprint(res[2]["response"]), "bulkId:nowhere") {
		t.Errorf("unresolved reference answer %v does not name it", res[2]["response"])
	}
	if _, ok := d.UserByName("never@example.com"); ok {
		t.Error("an operation after failOnErrors ran")
	}
	if _, ok := d.GroupByName("g"); ok {
		t.Error("the group with an unresolved member was created")
	}

	// Request-level refusals.
	cfg := baseConfig()
	cfg.Name = "small"
	cfg.Bulk = identitydomain.BulkConfig{MaxOperations: 2, MaxPayloadSize: 600}
	s := start(t, cfg)
	stok := getToken(t, s)
	for name, body := range map[string]any{
		"too many operations": bulkBody(0, bulkOp("DELETE", "/Users/x", "", nil), bulkOp("DELETE", "/Users/y", "", nil), bulkOp("DELETE", "/Users/z", "", nil)),
		"too large":           bulkBody(0, bulkOp("POST", "/Users", "big", userBody(strings.Repeat("x", 700)+"@example.com"))),
	} {
		if r := call(t, http.MethodPost, s.URL()+"/admin/v1/Bulk", stok, body); r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d %s, want 413", name, r.status, r.body)
		}
	}
	if r := call(t, http.MethodPost, s.URL()+"/admin/v1/Bulk", stok, map[string]any{"Operations": []any{}}); r.status != http.StatusBadRequest {
		t.Errorf("no schemas: %d, want 400", r.status)
	}

	// A domain without Bulk says so.
	cfg.Name, cfg.Bulk = "nobulk", identitydomain.BulkConfig{Disabled: true}
	n := start(t, cfg)
	ntok := getToken(t, n)
	if r := call(t, http.MethodPost, n.URL()+"/admin/v1/Bulk", ntok, bulkBody(0, bulkOp("DELETE", "/Users/x", "", nil))); r.status != http.StatusNotImplemented {
		t.Errorf("disabled: %d, want 501", r.status)
	}
	spc := call(t, http.MethodGet, n.URL()+"/admin/v1/ServiceProviderConfig/ServiceProviderConfig", ntok, nil)
	if b, _ := spc.json["bulk"].(map[string]any); b["supported"] != false {
		t.Errorf("disabled domain advertises bulk %v", b)
	}
}

// Bulk has a rate-limit group of its own: 5 per second on every tier,
// counted apart from "Others".
func TestBulkRateLimitGroup(t *testing.T) {
	cfg := baseConfig()
	cfg.Tier = identitydomain.TierPremium
	clock := identitydomain.NewManualClock(t0)
	d := start(t, cfg, identitydomain.WithClock(clock))
	tok := getToken(t, d)
	spc := call(t, http.MethodGet, d.URL()+"/admin/v1/ServiceProviderConfig/ServiceProviderConfig", tok, nil)
	if b, _ := spc.json["bulk"].(map[string]any); b["supported"] != true || b["maxOperations"] != float64(50) || b["maxPayloadSize"] != float64(1<<20) {
		t.Errorf("advertised bulk %v", b)
	}
	body := bulkBody(0, bulkOp("DELETE", "/Users/nobody", "", nil))
	for i := range 5 {
		if r := call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, body); r.status != http.StatusOK {
			t.Fatalf("bulk %d: %d", i, r.status)
		}
	}
	if r := call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, body); r.status != http.StatusTooManyRequests {
		t.Fatalf("6th bulk in one second: %d, want 429", r.status)
	}
	if r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users", tok, nil); r.status != http.StatusOK {
		t.Fatalf("a list while Bulk is limited: %d, want 200 (Others is another group)", r.status)
	}
	clock.Advance(1e9)
	if r := call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, body); r.status != http.StatusOK {
		t.Fatalf("bulk in the next second: %d", r.status)
	}
}

// Operations run in the order given (a userName freed by a DELETE can be
// taken by a later POST of the same request); a PATCH names a group
// created earlier by its bulkId and adds members by theirs; an operation's
// version is its If-Match; every result, failed ones too, says which
// operation it answers (bulkId for a POST, location otherwise).
func TestBulkOrderVersionsAndReferences(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	r := call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, bulkBody(0,
		bulkOp("POST", "/Users", "first", userBody("same@example.com")),
		bulkOp("DELETE", "/Users/bulkId:first", "", nil),
		bulkOp("POST", "/Users", "second", userBody("same@example.com")),
		bulkOp("POST", "/Groups", "g", groupBody("team")),
		bulkOp("PATCH", "/Groups/bulkId:g", "", patchBody(op("add", "members", []any{map[string]any{"value": "bulkId:second", "type": "User"}}))),
	))
	res := results(t, r)
	for i, want := range []string{"201", "204", "201", "201", "200"} {
		if i >= len(res) || res[i]["status"] != want {
			t.Fatalf("results %v: operation %d want %s (operations run out of order?)", res, i, want)
		}
	}
	g, _ := d.GroupByName("team")
	ms, _ := d.Members(g.ID)
	if len(ms) != 1 || ms[0].UserName != "same@example.com" || !strings.HasSuffix(fmt.Sprint(res[2]["location"]), "/"+ms[0].UserID) {
		t.Fatalf("members %v: want the second user, added by its bulkId", ms)
	}

	// A stale version fails its operation with 412, and the result names
	// the resource; the next operation still runs.
	uid := ms[0].UserID
	r = call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, bulkBody(0,
		map[string]any{"method": "PATCH", "path": "/Users/" + uid, "version": `W/"stale"`, "data": patchBody(op("replace", "displayName", "Nope"))},
		bulkOp("DELETE", "/Groups/"+g.ID, "", nil),
	))
	res = results(t, r)
	if len(res) != 2 || res[0]["status"] != "412" || !strings.HasSuffix(fmt.Sprint(res[0]["location"]), "/Users/"+uid) || res[1]["status"] != "204" {
		t.Fatalf("results %v: want 412 naming the user, then 204", res)
	}
	if u, _ := d.User(uid); u.DisplayName == "Nope" {
		t.Error("a PATCH with a stale version was applied")
	}
}

// The operations inside a Bulk request count against the Bulk group only
// (one request), not against "Others"; a Bulk request over the Bulk group's
// limit is refused whole with 429, a SCIM error and, where the domain sends
// one, Retry-After, and nothing of it runs.
func TestBulkCountedApartFromOthers(t *testing.T) {
	cfg := baseConfig()
	cfg.Tier = identitydomain.TierFree // Others 20/s, Bulk 5/s
	clock := identitydomain.NewManualClock(t0)
	d := start(t, cfg, identitydomain.WithClock(clock))
	tok := getToken(t, d)
	clock.Advance(1e9)
	var ops []map[string]any
	for i := range 30 {
		ops = append(ops, bulkOp("POST", "/Users", fmt.Sprint(i), userBody(fmt.Sprintf("o%d@example.com", i))))
	}
	for i, res := range results(t, call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, bulkBody(0, ops...))) {
		if res["status"] != "201" {
			t.Fatalf("operation %d: %v", i, res)
		}
	}
	for i := range 20 {
		if r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users?count=1", tok, nil); r.status != http.StatusOK {
			t.Fatalf("GET %d after a 30-operation Bulk: %d, want 200 (Bulk operations are not Others)", i, r.status)
		}
	}
	if r := call(t, http.MethodGet, d.URL()+"/admin/v1/Users?count=1", tok, nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("21st GET in a second: %d, want 429 (Others is 20/s on Free)", r.status)
	}

	if err := d.SetFaults(identitydomain.Faults{RetryAfter: 2e9}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(1e9)
	one := bulkBody(0, bulkOp("POST", "/Users", "x", userBody("late@example.com")))
	for range 5 {
		if r := call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, bulkBody(0, bulkOp("DELETE", "/Users/nobody", "", nil))); r.status != http.StatusOK {
			t.Fatalf("bulk: %d", r.status)
		}
	}
	r := call(t, http.MethodPost, d.URL()+"/admin/v1/Bulk", tok, one)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" || r.json["status"] != "429" {
		t.Fatalf("6th Bulk in a second: %d Retry-After %q %s, want 429, 2 and a SCIM error", r.status, r.header.Get("Retry-After"), r.body)
	}
	if _, ok := d.UserByName("late@example.com"); ok {
		t.Error("an operation of a refused Bulk request ran")
	}
	if st := d.Stats(); st.BulkOperations != 35 || st.RateLimited != 2 {
		t.Errorf("stats: %d Bulk operations, %d rate limited; want 35 and 2", st.BulkOperations, st.RateLimited)
	}
}
