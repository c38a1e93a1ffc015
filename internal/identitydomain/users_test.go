package identitydomain_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

func TestUserRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	c := f.c

	in := newUser("alice@example.com")
	in.ExternalId = common.String("hr-0001")
	u, r, err := c.CreateUser(ctx, in)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if r.Outcome != identitydomain.OutcomeCreated || r.Status != 201 || r.RequestID == "" || r.ETag == "" || r.Attempts != 1 {
		t.Errorf("create receipt = %+v", r)
	}
	id := deref(u.Id)
	if id == "<nil>" || deref(u.UserName) != "alice@example.com" {
		t.Fatalf("created user = id %s userName %s", id, deref(u.UserName))
	}

	got, err := c.GetUser(ctx, id)
	if err != nil || deref(got.UserName) != "alice@example.com" || deref(got.Name.GivenName) != "Test" {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}
	slim, err := c.GetUser(ctx, id, "userName")
	if err != nil || slim.Emails != nil || deref(slim.UserName) != "alice@example.com" {
		t.Errorf("GetUser(attributes userName) = emails %v userName %s, %v", slim.Emails, deref(slim.UserName), err)
	}

	byName, found, err := c.FindUserByName(ctx, "ALICE@example.com")
	if err != nil || !found || deref(byName.Id) != id {
		t.Errorf("FindUserByName = %s, %v, %v", deref(byName.Id), found, err)
	}
	byExt, found, err := c.FindUserByExternalID(ctx, "hr-0001")
	if err != nil || !found || deref(byExt.Id) != id {
		t.Errorf("FindUserByExternalID = %s, %v, %v", deref(byExt.Id), found, err)
	}
	if _, found, err := c.FindUserByName(ctx, "nobody"); err != nil || found {
		t.Errorf("FindUserByName(nobody) = %v, %v; want not found, no error", found, err)
	}

	patched, pr, err := c.PatchUser(ctx, id, "",
		identitydomain.Replace("displayName", "Alice L."),
		identitydomain.Replace("name.givenName", "Alicia"),
		identitydomain.Add("emails", []any{map[string]any{"value": "alice@home.example", "type": "home"}}))
	if err != nil {
		t.Fatalf("PatchUser: %v", err)
	}
	if deref(patched.DisplayName) != "Alice L." || deref(patched.Name.GivenName) != "Alicia" || len(patched.Emails) != 2 {
		t.Errorf("patched = displayName %s givenName %s emails %d", deref(patched.DisplayName), deref(patched.Name.GivenName), len(patched.Emails))
	}
	if pr.Outcome != identitydomain.OutcomeUpdated || pr.RequestID == "" || pr.ETag == "" || pr.ETag == r.ETag {
		t.Errorf("patch receipt = %+v (create etag %s)", pr, r.ETag)
	}

	// A stale If-Match is 412 PreconditionFailed; the current ETag works.
	_, _, err = c.PatchUser(ctx, id, r.ETag, identitydomain.Replace("title", "stale"))
	if !errors.Is(err, identitydomain.ErrPreconditionFailed) {
		t.Fatalf("PatchUser(stale If-Match) = %v, want PreconditionFailed", err)
	}
	if e := kindOf(t, err); e.Status != 412 || e.RequestID == "" || !identitydomain.Retryable(err) {
		t.Errorf("412 error = %+v", e)
	}
	if _, _, err := c.PatchUser(ctx, id, pr.ETag, identitydomain.Replace("title", "Engineer")); err != nil {
		t.Errorf("PatchUser(current ETag): %v", err)
	}
	// ReplaceAttributes builds one replace per attribute.
	if _, _, err := c.PatchUser(ctx, id, "", identitydomain.ReplaceAttributes(map[string]any{
		"nickName": "al", "active": false})...); err != nil {
		t.Fatalf("PatchUser(ReplaceAttributes): %v", err)
	}
	if got, _ := f.d.User(id); got.Active || got.Attributes["nickName"] != "al" {
		t.Errorf("after ReplaceAttributes: active %v nickName %v", got.Active, got.Attributes["nickName"])
	}

	// Stale If-Match on delete is 412 too.
	if _, err := c.DeleteUser(ctx, id, r.ETag); !errors.Is(err, identitydomain.ErrPreconditionFailed) {
		t.Errorf("DeleteUser(stale If-Match) = %v, want PreconditionFailed", err)
	}
	dr, err := c.DeleteUser(ctx, id, "")
	if err != nil || dr.Outcome != identitydomain.OutcomeDeleted || dr.Status != 204 {
		t.Fatalf("DeleteUser = %+v, %v", dr, err)
	}
	// Deleting it again: already gone, not an error.
	dr, err = c.DeleteUser(ctx, id, "")
	if err != nil || dr.Outcome != identitydomain.OutcomeAlreadyGone || dr.Status != 404 || dr.RequestID == "" {
		t.Fatalf("DeleteUser(missing) = %+v, %v; want already gone", dr, err)
	}
	_, err = c.GetUser(ctx, id)
	if !errors.Is(err, identitydomain.ErrNotFound) || identitydomain.Retryable(err) {
		t.Fatalf("GetUser(deleted) = %v, want NotFound", err)
	}
	if !strings.Contains(err.Error(), "get user "+id+" in src") {
		t.Errorf("error lacks context: %v", err)
	}
}

// TestFilterQuoting: names with quotes and backslashes are found, and a name
// crafted to widen the filter matches only itself.
func TestFilterQuoting(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	names := []string{
		`o"brien`,
		`back\slash`,
		`both\"mixed`,
		`trail\`,
		`x" or userName pr or userName eq "y`,
		"tab\tand newline\n",
	}
	want := map[string]string{}
	for _, n := range names {
		want[n] = deref(mustCreateUser(t, f.c, n).Id)
	}
	mustCreateUser(t, f.c, "y")
	for _, n := range names {
		u, found, err := f.c.FindUserByName(ctx, n)
		if err != nil || !found || deref(u.Id) != want[n] {
			t.Errorf("FindUserByName(%q) = %s, %v, %v; want %s", n, deref(u.Id), found, err, want[n])
		}
	}
	// Groups too, by displayName and externalId.
	g := mustCreateGroup(t, f.c, `ops "core" \ team`, `ext"1\`)
	if got, found, err := f.c.FindGroupByName(ctx, `ops "core" \ team`); err != nil || !found || deref(got.Id) != deref(g.Id) {
		t.Errorf("FindGroupByName = %s, %v, %v", deref(got.Id), found, err)
	}
	if got, found, err := f.c.FindGroupByExternalID(ctx, `ext"1\`); err != nil || !found || deref(got.Id) != deref(g.Id) {
		t.Errorf("FindGroupByExternalID = %s, %v, %v", deref(got.Id), found, err)
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`plain`:     `"plain"`,
		`a"b`:       `"a\"b"`,
		`a\b`:       `"a\\b"`,
		`\"`:        `"\\\""`,
		"tab\t\x01": `"tab\t\u0001"`,
		`ünïcode`:   `"ünïcode"`,
	} {
		if got := identitydomain.Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := identitydomain.Eq("userName", `a"b`); got != `userName eq "a\"b"` {
		t.Errorf("Eq = %s", got)
	}
}

// LooksLikeID tells a SCIM id from a name by its form alone; the ids the
// emulated domain hands out have it.
func TestLooksLikeID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"0123456789abcdef0123456789abcdef":  true,
		"0123456789ABCDEF0123456789ABCDEF":  false, // upper case
		"0123456789abcdef0123456789abcde":   false, // 31
		"0123456789abcdef0123456789abcdef0": false, // 33
		"0123456789abcdef0123456789abcdeg":  false,
		"ocid1.user.oc1..aaaa":              false,
		"":                                  false,
		"alice@example.com":                 false,
	} {
		if got := identitydomain.LooksLikeID(in); got != want {
			t.Errorf("LooksLikeID(%q) = %v, want %v", in, got, want)
		}
	}
	f := newFixture(t, fixtureOpt{})
	if u := mustCreateUser(t, f.c, "carol"); !identitydomain.LooksLikeID(deref(u.Id)) {
		t.Errorf("the emulator's user id %q does not look like an id", deref(u.Id))
	}
}

// TestDuplicateCreateIsConflict: a plain duplicate is a Conflict error, not
// silently the existing user.
func TestDuplicateCreateIsConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	mustCreateUser(t, f.c, "bob")
	_, _, err := f.c.CreateUser(context.Background(), newUser("BOB"))
	if !errors.Is(err, identitydomain.ErrConflict) {
		t.Fatalf("duplicate CreateUser = %v, want Conflict", err)
	}
	e := kindOf(t, err)
	if e.Status != 409 || e.SCIMType != "uniqueness" || e.MessageID == "" || e.RequestID == "" || e.Op != "CreateUser" || e.Domain != domainName {
		t.Errorf("conflict error = %+v", e)
	}
	if identitydomain.Retryable(err) {
		t.Error("a duplicate is retryable")
	}
	if n := f.d.CallCount(emu.OpCreateUser); n != 2 {
		t.Errorf("%d creates sent, want 2 (no retry of a 409)", n)
	}
}
