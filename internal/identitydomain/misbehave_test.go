package identitydomain_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/scimtest/misbehave"
)

// badFixture is a client talking to an emulated domain through the
// misbehaving double.
type badFixture struct {
	*fixture
	srv *misbehave.Server
}

func newBadFixture(t *testing.T, faults misbehave.Faults, users int) *badFixture {
	t.Helper()
	d := startDomain(t, emuConfig())
	if users > 0 {
		if err := d.Generate(emu.GenerateConfig{Users: users, Seed: 7}); err != nil {
			t.Fatal(err)
		}
	}
	srv := misbehave.New(d.Handler(), faults)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &badFixture{fixture: clientFixture(t, d, ts.URL, fixtureOpt{}), srv: srv}
}

// listUsers lists every user, returning the ids read and the error.
func listUsers(c *identitydomain.Client, pageSize int) ([]string, error) {
	var ids []string
	for u, err := range c.Users(context.Background(), identitydomain.ListOptions{PageSize: pageSize, Attributes: []string{"userName"}}) {
		if err != nil {
			return ids, err
		}
		ids = append(ids, *u.Id)
	}
	return ids, nil
}

// TestPagingFaultsFailTheRead: a server that breaks paging in every way it
// can be read makes the listing fail with InconsistentRead naming the
// fault, never end short without an error.
func TestPagingFaultsFailTheRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults misbehave.Faults
		fault  identitydomain.ReadFault
		says   string
	}{
		{"ignores paging", misbehave.Faults{IgnorePaging: true}, identitydomain.FaultStartIndexIgnored, "GET /Users ignored startIndex=11 (answered startIndex=1) on page 2"},
		{"repeats a page", misbehave.Faults{RepeatPage: true}, identitydomain.FaultRepeatedID, "on page 2 (startIndex=11)"},
		{"repeats a page without totalResults", misbehave.Faults{RepeatPage: true, OmitTotalResults: true}, identitydomain.FaultRepeatedID, "repeated id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newBadFixture(t, tc.faults, 29)
			ids, err := listUsers(f.c, 10)
			var e *identitydomain.Error
			if !errors.As(err, &e) || e.Kind != identitydomain.KindInconsistentRead || e.Fault != tc.fault || !errors.Is(err, identitydomain.ErrInconsistentRead) {
				t.Fatalf("read %d users, err %v; want InconsistentRead %s", len(ids), err, tc.fault)
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "POST /Users/.search") {
				t.Errorf("error does not name the fault and the fallback: %v", err)
			}
			if identitydomain.Retryable(err) {
				t.Error("an inconsistent read is retryable: a reconcile would spin on it")
			}
			if n := counter(t, f.reg, "iamflow_identitydomain_paging_faults_total", map[string]string{"fault": string(tc.fault)}); n < 1 {
				t.Errorf("paging fault %s not counted", tc.fault)
			}
			if n := strings.Count(f.logs.String(), `"msg":"identity domain paging fault"`); n != 1 {
				t.Errorf("%d paging-fault warnings, want exactly 1 per client:\n%s", n, f.logs)
			}
		})
	}
}

// TestPagingFallbackToSearch: the field fault (GET ignores startIndex and
// count, answering the first 20 of 29; POST /.search pages) is read whole
// through /.search, and the next listing goes there directly.
func TestPagingFallbackToSearch(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{IgnoreQueryPaging: true}, 29)
	ids, err := listUsers(f.c, 10)
	if err != nil || len(ids) != 29 || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 29 {
		t.Fatalf("read %d users (%v), want 29 distinct", len(ids), err)
	}
	if f.d.CallCount(emu.OpSearchUsers) == 0 {
		t.Error("no POST /.search")
	}
	if !strings.Contains(f.logs.String(), "read whole by a fallback") {
		t.Errorf("fallback not logged:\n%s", f.logs)
	}
	get, search := f.d.CallCount(emu.OpListUsers), f.d.CallCount(emu.OpSearchUsers)
	if ids, err := listUsers(f.c, 10); err != nil || len(ids) != 29 {
		t.Fatalf("second read: %d, %v", len(ids), err)
	}
	if f.d.CallCount(emu.OpListUsers) != get || f.d.CallCount(emu.OpSearchUsers) != search+3 {
		t.Errorf("second read: %d GETs and %d searches, want 0 and 3", f.d.CallCount(emu.OpListUsers)-get, f.d.CallCount(emu.OpSearchUsers)-search)
	}
}

// TestPagingFallbackAfterYielding: GET pages the first page right and then
// answers it again for every startIndex; the users of that first page,
// already yielded, are not yielded again when /.search reads the list whole.
func TestPagingFallbackAfterYielding(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{IgnoreQueryPaging: true, PageSize: 10}, 29)
	ids, err := listUsers(f.c, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 29 || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 29 {
		t.Fatalf("read %d users, %d distinct; want each of the 29 once", len(ids), len(slices.Compact(slices.Sorted(slices.Values(ids)))))
	}
	if f.d.CallCount(emu.OpListUsers) != 2 || f.d.CallCount(emu.OpSearchUsers) != 3 {
		t.Errorf("%d GETs and %d searches, want 2 (the second page betrays the fault) and 3", f.d.CallCount(emu.OpListUsers), f.d.CallCount(emu.OpSearchUsers))
	}
}

// TestPagingWithoutTotalResults: without totalResults, a short page is not
// trusted to be the last: the read goes on to an empty page.
func TestPagingWithoutTotalResults(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{OmitTotalResults: true}, 29)
	ids, err := listUsers(f.c, 10)
	if err != nil || len(ids) != 29 {
		t.Fatalf("read %d users (%v), want 29", len(ids), err)
	}
	if n := f.d.CallCount(emu.OpListUsers); n != 4 {
		t.Errorf("%d requests, want 4 (three pages and an empty one)", n)
	}
	if n := counter(t, f.reg, "iamflow_identitydomain_paging_faults_total", map[string]string{"fault": "total_missing"}); n != 1 {
		t.Errorf("total_missing counted %v times, want 1", n)
	}
}

// TestDroppedExtension: a server without the group extension drops its
// description silently on create, does not declare it, and refuses a PATCH
// of it with 400 invalidPath; memberships are separate PATCHes and pass.
func TestDroppedExtension(t *testing.T) {
	t.Parallel()
	ext := identitydomain.SchemaGroupExtension
	f := newBadFixture(t, misbehave.Faults{DropExtensions: []string{ext}}, 0)
	ctx := context.Background()
	caps := mustCapabilities(t, f.c)
	if caps.Declares("Group", ext+":description") || !caps.Declares("Group", "displayName") {
		t.Errorf("Declares(group description) = %v, Declares(displayName) = %v", caps.Declares("Group", ext+":description"), caps.Declares("Group", "displayName"))
	}
	g := mustCreateGroup(t, f.c, "Ops", "")
	if got, err := f.c.GetGroup(ctx, *g.Id); err != nil || got.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup != nil {
		t.Errorf("the dropped extension came back: %+v, %v", got.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup, err)
	}
	_, _, err := f.c.PatchGroup(ctx, *g.Id, "", identitydomain.Replace(ext+":description", "on call"))
	if e := kindOf(t, err); e.Kind != identitydomain.KindInvalidRequest || e.SCIMType != "invalidPath" || identitydomain.Retryable(err) {
		t.Errorf("PATCH of the dropped extension = %+v", e)
	}
	u := mustCreateUser(t, f.c, "ann")
	if _, err := f.c.AddMembers(ctx, *g.Id, *u.Id); err != nil {
		t.Fatalf("members after a refused attribute: %v", err)
	}
	if ms := memberIDs(t, f.c, *g.Id, 0); !slices.Equal(ms, []string{*u.Id}) {
		t.Errorf("members = %v", ms)
	}
}

// TestRejectedAttribute: one attribute the server refuses fails only the
// PATCH that carries it.
func TestRejectedAttribute(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{RejectAttribute: "title"}, 0)
	ctx := context.Background()
	u := mustCreateUser(t, f.c, "bob")
	_, _, err := f.c.PatchUser(ctx, *u.Id, "", identitydomain.Replace("title", "CTO"))
	if e := kindOf(t, err); e.Status != 400 || e.SCIMType != "invalidPath" {
		t.Errorf("PATCH title = %+v", e)
	}
	if _, _, err := f.c.PatchUser(ctx, *u.Id, "", identitydomain.Replace("displayName", "Bob B")); err != nil {
		t.Errorf("PATCH displayName after a refused title: %v", err)
	}
	if f.srv.Count("rejected") != 1 {
		t.Errorf("rejected %d, want 1", f.srv.Count("rejected"))
	}
}

// TestNoDeleteCascade: a deleted user stays a member of its group on such a
// server; the member no longer resolves to a user, and removing it works.
func TestNoDeleteCascade(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{NoDeleteCascade: true}, 0)
	ctx := context.Background()
	g := mustCreateGroup(t, f.c, "Eng", "")
	a, b := mustCreateUser(t, f.c, "carol"), mustCreateUser(t, f.c, "dave")
	if _, err := f.c.AddMembers(ctx, *g.Id, *a.Id, *b.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.DeleteUser(ctx, *a.Id, ""); err != nil {
		t.Fatal(err)
	}
	if ms := memberIDs(t, f.c, *g.Id, 0); !slices.Contains(ms, *a.Id) || len(ms) != 2 {
		t.Fatalf("members after the delete = %v, want the deleted user still listed (no cascade)", ms)
	}
	if _, err := f.c.GetUser(ctx, *a.Id); !errors.Is(err, identitydomain.ErrNotFound) {
		t.Errorf("the dangling member resolves: %v", err)
	}
	if _, err := f.c.RemoveMembers(ctx, *g.Id, *a.Id); err != nil {
		t.Fatalf("remove the dangling member: %v", err)
	}
	if ms := memberIDs(t, f.c, *g.Id, 0); !slices.Equal(ms, []string{*b.Id}) {
		t.Errorf("members after removing the dangling one = %v", ms)
	}
}

// TestMembersOnlyOnRequest: a server that answers member paging with no
// members (it knows only attributes=members) is caught by the plain read
// that confirms an empty first page; the client then reads members whole.
func TestMembersOnlyOnRequest(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{MembersOnlyOnRequest: true}, 0)
	ctx := context.Background()
	g := mustCreateGroup(t, f.c, "Sales", "")
	var want []string
	for i := range 3 {
		u := mustCreateUser(t, f.c, fmt.Sprintf("sales%d", i))
		want = append(want, *u.Id)
	}
	if _, err := f.c.AddMembers(ctx, *g.Id, want...); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if got := memberIDs(t, f.c, *g.Id, 0); !slices.Equal(got, want) {
		t.Fatalf("members = %v, want %v", got, want)
	}
	if n := counter(t, f.reg, "iamflow_identitydomain_paging_faults_total", map[string]string{"fault": "member_paging_ignored"}); n != 1 {
		t.Errorf("member_paging_ignored counted %v times", n)
	}
	before := f.d.CallCount(emu.OpGetGroup)
	if got := memberIDs(t, f.c, *g.Id, 0); !slices.Equal(got, want) || f.d.CallCount(emu.OpGetGroup)-before != 1 {
		t.Errorf("second read: %v in %d requests, want one plain read", got, f.d.CallCount(emu.OpGetGroup)-before)
	}
	// GetGroupWithMembers reads them too.
	gm, err := f.c.GetGroupWithMembers(ctx, *g.Id, "displayName")
	if err != nil || len(gm.Members) != 3 || deref(gm.DisplayName) != "Sales" {
		t.Errorf("GetGroupWithMembers = %d members, %q, %v", len(gm.Members), deref(gm.DisplayName), err)
	}
	// Read whole, a missing group's members end in its NotFound.
	var errs []error
	for _, err := range f.c.GroupMembers(ctx, "0000", 0) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], identitydomain.ErrNotFound) {
		t.Errorf("members of a missing group, read whole: %v, want one NotFound", errs)
	}
}

// TestNoETag: a server without ETags refuses every If-Match with 412; the
// client, told by discovery, sends none.
func TestNoETag(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{NoETag: true}, 0)
	ctx := context.Background()
	u := mustCreateUser(t, f.c, "erin")
	if caps, err := f.c.Capabilities(ctx); err != nil || caps.ETag {
		t.Fatalf("capabilities %+v, %v: want etag unsupported", caps, err)
	}
	if _, _, err := f.c.PatchUser(ctx, *u.Id, `W/"1"`, identitydomain.Replace("displayName", "Erin")); err != nil {
		t.Errorf("PatchUser with an If-Match the server cannot check: %v", err)
	}
	if _, err := f.c.DeleteUser(ctx, *u.Id, `W/"1"`); err != nil {
		t.Errorf("DeleteUser: %v", err)
	}
	if f.srv.Count("412") != 0 {
		t.Errorf("If-Match sent %d times", f.srv.Count("412"))
	}
}

// TestFilterIgnored: a server that ignores filters would answer a lookup
// with somebody else; the lookup fails instead.
func TestFilterIgnored(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{NoFilter: true, NoSort: true}, 5)
	ctx := context.Background()
	name := f.d.Users()[3].UserName
	_, found, err := f.c.FindUserByName(ctx, name)
	var e *identitydomain.Error
	if !errors.As(err, &e) || e.Fault != identitydomain.FaultFilterIgnored || found {
		t.Fatalf("FindUserByName(%q) = found %v, %v; want filter_ignored", name, found, err)
	}
	if _, _, err := f.c.FindGroupByName(ctx, "nobody"); err != nil {
		t.Errorf("an empty answer is not a fault: %v", err)
	}
	if caps, err := f.c.Capabilities(ctx); err != nil || caps.Filter || caps.Sort || !caps.Patch {
		t.Errorf("capabilities = %+v, %v", caps, err)
	}
}

// TestRetryAfterHonoured: 429s with Retry-After are waited out, as long as
// asked, within retry.max_delay; a longer one is handed to the caller.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{TooManyRequests: 2, RetryAfter: 3 * time.Second}, 1)
	ctx := context.Background()
	id := f.d.Users()[0].ID
	if _, err := f.c.GetUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := f.sleeps.All(); !slices.Equal(got, []time.Duration{3 * time.Second, 3 * time.Second}) {
		t.Errorf("waits = %v, want [3s 3s]", got)
	}
	f.srv.SetFaults(misbehave.Faults{TooManyRequests: 1, RetryAfter: time.Minute})
	_, err := f.c.GetUser(ctx, id)
	if e := kindOf(t, err); e.Kind != identitydomain.KindRateLimited || e.RetryAfter != time.Minute || e.Attempts != 1 {
		t.Errorf("Retry-After beyond max_delay = %+v", e)
	}
}

// TestNoDiscovery: a server without discovery is assumed to support and
// declare everything.
func TestNoDiscovery(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t, misbehave.Faults{NoDiscovery: true}, 0)
	caps, err := f.c.Capabilities(context.Background())
	if err != nil || caps.Discovered || !caps.Declares("Group", identitydomain.SchemaGroupExtension+":description") {
		t.Errorf("capabilities = %+v, %v", caps, err)
	}
}
