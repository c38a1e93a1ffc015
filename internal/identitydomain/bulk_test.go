package identitydomain_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/scimtest/misbehave"
)

func bulkUser(name string) map[string]any {
	return map[string]any{"schemas": []string{identitydomain.SchemaUser}, "userName": name,
		"name": map[string]any{"givenName": "G", "familyName": "F"}}
}

func bulkGroup(name string, memberRefs ...string) map[string]any {
	var ms []any
	for _, r := range memberRefs {
		ms = append(ms, map[string]any{"value": r, "type": "User"})
	}
	g := map[string]any{"schemas": []string{identitydomain.SchemaGroup}, "displayName": name}
	if len(ms) > 0 {
		g["members"] = ms
	}
	return g
}

// Operations split over several requests (maxOperations 3): the bulkIds a
// later request names are resolved by the client, every result comes back
// in order with the new resource's id.
func TestBulkSplitsAndResolvesAcrossRequests(t *testing.T) {
	f := newFixture(t, fixtureOpt{emu: func(c *emu.Config) { c.Bulk = emu.BulkConfig{MaxOperations: 3} }})
	var ops []identitydomain.BulkOperation
	var refs []string
	for i := range 7 {
		id := fmt.Sprintf("u%d", i)
		ops = append(ops, identitydomain.BulkOperation{Method: "POST", Path: "/Users", BulkID: id, Data: bulkUser(id + "@example.com")})
		refs = append(refs, "bulkId:"+id)
	}
	ops = append(ops, identitydomain.BulkOperation{Method: "POST", Path: "/Groups", BulkID: "g", Data: bulkGroup("everyone", refs...)},
		identitydomain.BulkOperation{Method: "PATCH", Path: "/Users/bulkId:u0", Data: patchOp(identitydomain.Replace("displayName", "First"))})
	res, err := f.c.Bulk(context.Background(), ops, identitydomain.BulkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.ID == "" {
			t.Fatalf("operation %d: %+v", i, r)
		}
	}
	if n := f.d.CallCount(emu.OpBulk); n != 3 {
		t.Errorf("%d Bulk requests for 9 operations at 3 each, want 3", n)
	}
	g, _ := f.d.GroupByName("everyone")
	if ms, _ := f.d.Members(g.ID); len(ms) != 7 {
		t.Fatalf("group members %d, want 7 (references across requests resolved)", len(ms))
	}
	if u, _ := f.d.User(res[0].ID); u.DisplayName != "First" {
		t.Errorf("u0 %+v: the PATCH naming it by bulkId did not land", u)
	}
}

func patchOp(ops ...any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

// Each operation's outcome is its own: a refused one carries an *Error of
// the right kind, the others succeed; failOnErrors stops the call and what
// was not run says so.
func TestBulkResultsPerOperation(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	ops := []identitydomain.BulkOperation{
		{Method: "POST", Path: "/Users", BulkID: "a", Data: bulkUser("a@example.com")},
		{Method: "POST", Path: "/Users", BulkID: "dup", Data: bulkUser("a@example.com")},
		{Method: "POST", Path: "/Users", BulkID: "b", Data: bulkUser("b@example.com")},
		{Method: "DELETE", Path: "/Users/0123456789abcdef0123456789abcdef"},
	}
	res, err := f.c.Bulk(ctx, ops, identitydomain.BulkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[2].Err != nil {
		t.Errorf("good operations failed: %v, %v", res[0].Err, res[2].Err)
	}
	if !identitydomain.IsKind(res[1].Err, identitydomain.KindConflict) {
		t.Errorf("duplicate userName: %v, want Conflict", res[1].Err)
	}
	if !identitydomain.IsKind(res[3].Err, identitydomain.KindNotFound) {
		t.Errorf("delete of nobody: %v, want NotFound", res[3].Err)
	}

	res, err = f.c.Bulk(ctx, []identitydomain.BulkOperation{
		{Method: "POST", Path: "/Users", BulkID: "x", Data: bulkUser("a@example.com")}, // conflict
		{Method: "POST", Path: "/Users", BulkID: "y", Data: bulkUser("y@example.com")},
	}, identitydomain.BulkOptions{FailOnErrors: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err == nil || !errors.Is(res[1].Err, identitydomain.ErrNotRun) {
		t.Fatalf("failOnErrors 1: %+v", res)
	}
	if _, ok := f.d.UserByName("y@example.com"); ok {
		t.Error("an operation after failOnErrors ran")
	}
}

// The payload limit splits requests; an operation too large alone is
// refused without being sent, and the others go on; a domain without Bulk
// says so.
func TestBulkLimitsAndSupport(t *testing.T) {
	f := newFixture(t, fixtureOpt{emu: func(c *emu.Config) { c.Bulk = emu.BulkConfig{MaxPayloadSize: 900} }})
	ctx := context.Background()
	var ops []identitydomain.BulkOperation
	for i := range 6 {
		ops = append(ops, identitydomain.BulkOperation{Method: "POST", Path: "/Users", BulkID: fmt.Sprint(i), Data: bulkUser(fmt.Sprintf("p%d@example.com", i))})
	}
	res, err := f.c.Bulk(ctx, ops, identitydomain.BulkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(res, func(r identitydomain.BulkResult) bool { return r.Err != nil }) {
		t.Fatalf("results %+v", res)
	}
	if n := f.d.CallCount(emu.OpBulk); n < 2 {
		t.Errorf("%d Bulk requests: the 900-byte limit should have split them", n)
	}
	big := []identitydomain.BulkOperation{{Method: "POST", Path: "/Users", BulkID: "big", Data: bulkUser(string(make([]byte, 2000)) + "@x")}}
	before := f.d.CallCount(emu.OpBulk)
	big = append(big, ops[0])
	big[1].Data = bulkUser("after-big@example.com")
	if res, err := f.c.Bulk(ctx, big, identitydomain.BulkOptions{}); err != nil || !identitydomain.IsKind(res[0].Err, identitydomain.KindInvalidRequest) || res[1].Err != nil {
		t.Errorf("an operation larger than maxPayloadSize: %v %+v, want it refused as InvalidRequest and the next one done", err, res)
	}
	if f.d.CallCount(emu.OpBulk) != before+1 {
		t.Error("the oversized operation was sent")
	}
	if _, ok := f.d.UserByName(string(make([]byte, 2000)) + "@x"); ok {
		t.Error("the oversized operation was made")
	}

	n := newFixture(t, fixtureOpt{emu: func(c *emu.Config) { c.Bulk = emu.BulkConfig{Disabled: true} }})
	if _, err := n.c.Bulk(ctx, ops[:1], identitydomain.BulkOptions{}); !errors.Is(err, identitydomain.ErrBulkUnsupported) {
		t.Errorf("no Bulk: %v, want ErrBulkUnsupported", err)
	}
	if n.d.CallCount(emu.OpBulk) != 0 {
		t.Error("a Bulk request was sent to a domain that does not support it")
	}
}

// The client keeps Bulk under its own limit (5 per second on every tier):
// a burst of Bulk requests against a rate-limited domain meets no 429.
func TestBulkRateLimitGroupHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the Bulk rate limit")
	}
	f := newFixture(t, fixtureOpt{
		emu: func(c *emu.Config) { c.Tier = emu.TierFree; c.Bulk = emu.BulkConfig{MaxOperations: 1} },
		cfg: func(c *identitydomain.Config) {
			c.Tier = identitydomain.TierFree
			c.Limits = identitydomain.Limits{}
		},
	})
	var ops []identitydomain.BulkOperation
	for i := range 12 {
		ops = append(ops, identitydomain.BulkOperation{Method: "DELETE", Path: fmt.Sprintf("/Users/%032x", i)})
	}
	start := time.Now()
	if _, err := f.c.Bulk(context.Background(), ops, identitydomain.BulkOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := f.d.Stats(); st.RateLimited != 0 {
		t.Errorf("%d requests met 429", st.RateLimited)
	}
	t.Logf("12 Bulk requests in %v under the 5/s limit", time.Since(start).Round(time.Millisecond))
}

// bulkScript is a call exercising every kind of result: users created, a
// group naming one by bulkId, a PATCH of that group by its bulkId adding
// the other (sent in a second request, its path resolved by the client),
// and a DELETE of nobody (404).
func bulkScript() []identitydomain.BulkOperation {
	return []identitydomain.BulkOperation{
		{Method: "POST", Path: "/Users", BulkID: "a", Data: bulkUser("a@example.com")},
		{Method: "POST", Path: "/Users", BulkID: "b", Data: bulkUser("b@example.com")},
		{Method: "POST", Path: "/Groups", BulkID: "g", Data: bulkGroup("pair", "bulkId:a")},
		{Method: "PATCH", Path: "/Groups/bulkId:g", Data: patchOp(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": "bulkId:b", "type": "User"}}})},
		{Method: "DELETE", Path: "/Users/0123456789abcdef0123456789abcdef"},
	}
}

// checkScript checks the domain holds what bulkScript made and that the
// results name the right objects (the ids of a, b and the group).
func checkScript(t *testing.T, d *emu.Domain, res []identitydomain.BulkResult, answered int) {
	t.Helper()
	a, _ := d.UserByName("a@example.com")
	b, _ := d.UserByName("b@example.com")
	g, ok := d.GroupByName("pair")
	if !ok {
		t.Fatal("no group")
	}
	if ms, _ := d.Members(g.ID); len(ms) != 2 {
		t.Fatalf("members %v, want a and b", ms)
	}
	want := []string{a.ID, b.ID, g.ID, g.ID}
	for i := range answered {
		if i < len(want) && (res[i].Err != nil || res[i].ID != want[i]) {
			t.Errorf("operation %d: %+v, want id %s", i, res[i], want[i])
		}
	}
	if answered == 5 && !identitydomain.IsKind(res[4].Err, identitydomain.KindNotFound) {
		t.Errorf("delete of nobody: %+v, want NotFound", res[4])
	}
}

// scriptAgainst runs bulkScript against a server with faults; the call
// must succeed with every operation's result its own.
func scriptAgainst(t *testing.T, faults misbehave.Faults) *badFixture {
	t.Helper()
	f := newBadFixture(t, faults, 0)
	res, err := f.c.Bulk(context.Background(), bulkScript(), identitydomain.BulkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkScript(t, f.d, res, 5)
	return f
}

// Against a server whose Bulk misbehaves, every operation's result is
// still its own or says it is missing; nothing is lost or done twice.
func TestBulkAgainstMisbehavingServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("shuffled results", func(t *testing.T) {
		f := scriptAgainst(t, misbehave.Faults{BulkFaults: misbehave.BulkFaults{BulkShuffle: true}})
		if f.srv.Count("shuffled") == 0 {
			t.Fatal("the answer was not shuffled")
		}
	})

	t.Run("missing results", func(t *testing.T) {
		f := newBadFixture(t, misbehave.Faults{BulkFaults: misbehave.BulkFaults{BulkDropResults: 1}}, 0)
		ops := bulkScript()[:3]
		ops[2] = identitydomain.BulkOperation{Method: "POST", Path: "/Users", BulkID: "c", Data: bulkUser("c@example.com")}
		res, err := f.c.Bulk(ctx, ops, identitydomain.BulkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"a@example.com", "b@example.com"} {
			if u, _ := f.d.UserByName(name); res[i].Err != nil || res[i].ID != u.ID {
				t.Errorf("operation %d: %+v, want %s's id", i, res[i], name)
			}
		}
		if _, ran := f.d.UserByName("c@example.com"); !ran || !errors.Is(res[2].Err, identitydomain.ErrNoResult) {
			t.Errorf("the operation without a result (ran: %v): %+v, want ErrNoResult (it may have run)", ran, res[2])
		}
	})

	t.Run("413 below the advertised limit", func(t *testing.T) {
		f := scriptAgainst(t, misbehave.Faults{BulkFaults: misbehave.BulkFaults{BulkMaxOperations: 2}})
		if f.srv.Count("bulk413") == 0 {
			t.Fatal("no request was refused as too large")
		}
		if n, refused := f.d.CallCount(emu.OpBulk), f.srv.Count("bulk413"); n != 5 || refused != 1 {
			t.Errorf("%d Bulk requests refused, %d reached the domain; want 1 (the first, of 3) then 5 (halved to 1, then 1 each)", refused, n)
		}
	})

	t.Run("answer lost after the request ran", func(t *testing.T) {
		f := newBadFixture(t, misbehave.Faults{BulkFaults: misbehave.BulkFaults{BulkLoseAnswers: 1}}, 0)
		res, err := f.c.Bulk(ctx, bulkScript(), identitydomain.BulkOptions{})
		if f.srv.Count("bulk-answer-lost") != 1 {
			t.Fatalf("the answer was lost %d times, want 1", f.srv.Count("bulk-answer-lost"))
		}
		if err == nil {
			t.Fatal("Bulk succeeded; want the lost answer's error")
		}
		// The first request (a, b, the group) ran: its operations may have
		// been applied, so none of them is "not run".
		for i := range 3 {
			if !errors.Is(res[i].Err, identitydomain.ErrNoResult) {
				t.Errorf("operation %d: %v, want ErrNoResult", i, res[i].Err)
			}
		}
		for i := 3; i < len(res); i++ {
			if !errors.Is(res[i].Err, identitydomain.ErrNotRun) {
				t.Errorf("operation %d (never sent): %v, want ErrNotRun", i, res[i].Err)
			}
		}
		if _, ok := f.d.GroupByName("pair"); !ok {
			t.Error("the group the lost request made is not in the domain")
		}
	})

	t.Run("429 on the Bulk group", func(t *testing.T) {
		f := scriptAgainst(t, misbehave.Faults{RetryAfter: 3 * time.Second, BulkFaults: misbehave.BulkFaults{BulkTooManyRequests: 2}})
		if f.srv.Count("bulk429") != 2 {
			t.Fatalf("%d Bulk requests throttled, want 2", f.srv.Count("bulk429"))
		}
		if n := f.d.CallCount(emu.OpBulk); n != 2 {
			t.Errorf("%d Bulk requests reached the domain, want 2 (the throttled ones did nothing; the PATCH naming the new group goes second)", n)
		}
		if !slices.ContainsFunc(f.sleeps.All(), func(d time.Duration) bool { return d >= 3*time.Second }) {
			t.Errorf("sleeps %v: the client did not wait the Retry-After", f.sleeps.All())
		}
	})
}
