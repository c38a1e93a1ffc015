package identitydomain_test

import (
	"context"
	"errors"
	"iter"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

func TestUsersPaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{cfg: func(c *identitydomain.Config) { c.Retry.MaxAttempts = 2 }})
	if err := f.d.Generate(emu.GenerateConfig{Users: 2500, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	listed := listOnce(t, "user", f.c.Users(ctx, identitydomain.ListOptions{PageSize: 1000, Attributes: []string{"userName"}}),
		func(u identitydomains.User) string { return *u.Id })
	for _, u := range listed {
		if u.Emails != nil {
			t.Fatal("attributes not applied: emails returned")
		}
	}
	if len(listed) != 2500 {
		t.Errorf("listed %d users, want 2500", len(listed))
	}
	if n := f.d.CallCount(emu.OpListUsers); n != 3 {
		t.Errorf("%d list calls, want exactly 3", n)
	}

	// Breaking out of the loop stops the paging: one call only.
	before := f.d.CallCount(emu.OpListUsers)
	n := 0
	for _, err := range f.c.Users(ctx, identitydomain.ListOptions{PageSize: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 5 {
			break
		}
	}
	if calls := f.d.CallCount(emu.OpListUsers) - before; calls != 1 {
		t.Errorf("break after 5 users made %d calls, want 1", calls)
	}

	// Filter and sort, with the default page size.
	var names []string
	for u, err := range f.c.Users(ctx, identitydomain.ListOptions{Filter: `userName sw "user00001"`, SortBy: "userName", Descending: true}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, *u.UserName)
	}
	if len(names) != 10 || names[0] != "user000019" || names[9] != "user000010" {
		t.Errorf("filtered, sorted users = %v", names)
	}

	// Page sizes outside 1..1000 are refused before any request.
	for _, size := range []int{-1, 1001} {
		for _, err := range f.c.Users(ctx, identitydomain.ListOptions{PageSize: size}) {
			if !errors.Is(err, identitydomain.ErrInvalidRequest) {
				t.Errorf("PageSize %d: %v, want InvalidRequest", size, err)
			}
		}
	}

	// The first error ends the iteration: here an outage on the second page.
	before = f.d.CallCount(emu.OpListUsers)
	count, errs := 0, 0
	for _, err := range f.c.Users(ctx, identitydomain.ListOptions{PageSize: 1000}) {
		if err != nil {
			errs++
			if !errors.Is(err, identitydomain.ErrUnavailable) {
				t.Errorf("error = %v, want Unavailable", err)
			}
			continue
		}
		if count++; count == 1000 {
			if err := f.d.SetFaults(emu.Faults{Outage: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if count != 1000 || errs != 1 {
		t.Errorf("got %d users and %d errors, want 1000 and 1", count, errs)
	}
	if calls := f.d.CallCount(emu.OpListUsers) - before; calls != 3 {
		t.Errorf("%d list calls, want 3 (one page, then two attempts)", calls)
	}
}

func TestGroupsPaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	if err := f.d.Generate(emu.GenerateConfig{Users: 10, Groups: 25, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for g, err := range f.c.Groups(context.Background(), identitydomain.ListOptions{PageSize: 10}) {
		if err != nil {
			t.Fatal(err)
		}
		if g.DisplayName == nil {
			t.Fatal("group without displayName")
		}
		n++
	}
	if n != 25 || f.d.CallCount(emu.OpListGroups) != 3 {
		t.Errorf("listed %d groups in %d calls, want 25 in 3", n, f.d.CallCount(emu.OpListGroups))
	}
}

// TestGroupMembersBeyond10000: a group with 12,000 members is listed whole,
// with member paging; asking for members plainly fails with 400 tooMany.
func TestGroupMembersBeyond10000(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	if err := f.d.Generate(emu.GenerateConfig{Users: 12000, Groups: 1, Memberships: 12000, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g := f.d.Groups()[0]

	members := listOnce(t, "member", f.c.GroupMembers(ctx, g.ID, 0), func(m identitydomains.GroupMembers) string { return *m.Value })
	if len(members) != 12000 {
		t.Errorf("listed %d members, want 12000", len(members))
	}
	if n := f.d.CallCount(emu.OpGetGroup); n != 2 {
		t.Errorf("%d GetGroup calls, want 2 (10,000 + 2,000)", n)
	}

	before := f.d.CallCount(emu.OpGetGroup)
	n := 0
	for _, err := range f.c.GroupMembers(ctx, g.ID, 5000) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if calls := f.d.CallCount(emu.OpGetGroup) - before; n != 12000 || calls != 3 {
		t.Errorf("page 5000: %d members in %d calls, want 12000 in 3", n, calls)
	}

	_, err := f.c.GetGroup(ctx, g.ID, "members")
	if e := kindOf(t, err); e.Kind != identitydomain.KindInvalidRequest || e.Status != 400 || e.SCIMType != "tooMany" {
		t.Errorf("GetGroup(members) of a 12,000-member group = %+v", e)
	}
	for _, err := range f.c.GroupMembers(ctx, g.ID, 10001) {
		if !errors.Is(err, identitydomain.ErrInvalidRequest) {
			t.Errorf("page 10001: %v", err)
		}
	}
	for _, err := range f.c.GroupMembers(ctx, "0000", 0) {
		if !errors.Is(err, identitydomain.ErrNotFound) {
			t.Errorf("members of a missing group: %v", err)
		}
	}
}

// TestEmptyGroupMembersConfirmed: an empty first member page is confirmed
// by a plain read (a server may drop the paged attribute), until the domain
// has answered a member page with members.
func TestEmptyGroupMembersConfirmed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	empty := mustCreateGroup(t, f.c, "empty", "")
	full := mustCreateGroup(t, f.c, "full", "")
	u := mustCreateUser(t, f.c, "member")
	if _, err := f.c.AddMembers(ctx, *full.Id, *u.Id); err != nil {
		t.Fatal(err)
	}
	calls := func(id string) int64 {
		before := f.d.CallCount(emu.OpGetGroup)
		for _, err := range f.c.GroupMembers(ctx, id, 0) {
			if err != nil {
				t.Fatal(err)
			}
		}
		return f.d.CallCount(emu.OpGetGroup) - before
	}
	if n := calls(*empty.Id); n != 2 {
		t.Errorf("empty group, domain unproven: %d requests, want 2", n)
	}
	if n := calls(*full.Id); n != 1 {
		t.Errorf("group with a member: %d requests, want 1", n)
	}
	if n := calls(*empty.Id); n != 1 {
		t.Errorf("empty group, domain proven: %d requests, want 1", n)
	}
}

// listOnce reads a listing to its end, failing the test at its first error
// or at an item listed twice; it returns the items by id.
func listOnce[T any](t *testing.T, noun string, list iter.Seq2[T, error], id func(T) string) map[string]T {
	t.Helper()
	seen := map[string]T{}
	for item, err := range list {
		if err != nil {
			t.Fatalf("listing %ss: %v", noun, err)
		}
		k := id(item)
		if _, dup := seen[k]; dup {
			t.Fatalf("%s %s listed twice", noun, k)
		}
		seen[k] = item
	}
	return seen
}
