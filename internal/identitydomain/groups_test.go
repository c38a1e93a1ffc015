package identitydomain_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

func TestGroupRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	c := f.c

	g, r, err := c.CreateGroup(ctx, newGroup("pilots", "ext-pilots"))
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	id := deref(g.Id)
	if r.Outcome != identitydomain.OutcomeCreated || r.RequestID == "" || r.Status != 201 {
		t.Errorf("receipt = %+v", r)
	}
	if ext := g.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup; ext == nil || deref(ext.Description) != "group pilots" {
		t.Errorf("created group extension = %+v", ext)
	}
	got, err := c.GetGroup(ctx, id)
	if err != nil || deref(got.DisplayName) != "pilots" {
		t.Fatalf("GetGroup = %+v, %v", got, err)
	}
	if byName, found, err := c.FindGroupByName(ctx, "PILOTS"); err != nil || !found || deref(byName.Id) != id {
		t.Errorf("FindGroupByName = %s, %v, %v", deref(byName.Id), found, err)
	}
	if byExt, found, err := c.FindGroupByExternalID(ctx, "ext-pilots"); err != nil || !found || deref(byExt.Id) != id {
		t.Errorf("FindGroupByExternalID = %s, %v, %v", deref(byExt.Id), found, err)
	}
	if _, found, err := c.FindGroupByName(ctx, "nobody"); err != nil || found {
		t.Errorf("FindGroupByName(nobody) = %v, %v", found, err)
	}

	patched, pr, err := c.PatchGroup(ctx, id, "", identitydomain.ReplaceAttributes(map[string]any{
		"displayName": "aviators",
		identitydomain.SchemaGroupExtension + ":description": "they fly",
	})...)
	if err != nil {
		t.Fatalf("PatchGroup: %v", err)
	}
	if deref(patched.DisplayName) != "aviators" || deref(patched.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup.Description) != "they fly" {
		t.Errorf("patched = %s / %+v", deref(patched.DisplayName), patched.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup)
	}
	if pr.ETag == "" || pr.Outcome != identitydomain.OutcomeUpdated {
		t.Errorf("patch receipt = %+v", pr)
	}
	if _, _, err := c.PatchGroup(ctx, id, *g.Meta.Version, identitydomain.Replace("displayName", "x")); !errors.Is(err, identitydomain.ErrPreconditionFailed) {
		t.Errorf("PatchGroup(stale version) = %v, want PreconditionFailed", err)
	}
	// A duplicate displayName is a conflict.
	if _, _, err := c.CreateGroup(ctx, newGroup("Aviators", "")); !errors.Is(err, identitydomain.ErrConflict) {
		t.Errorf("duplicate CreateGroup = %v, want Conflict", err)
	}

	dr, err := c.DeleteGroup(ctx, id, pr.ETag)
	if err != nil || dr.Outcome != identitydomain.OutcomeDeleted {
		t.Fatalf("DeleteGroup = %+v, %v", dr, err)
	}
	if dr, err := c.DeleteGroup(ctx, id, ""); err != nil || dr.Outcome != identitydomain.OutcomeAlreadyGone {
		t.Fatalf("DeleteGroup(missing) = %+v, %v", dr, err)
	}
	if _, err := c.GetGroup(ctx, id); !errors.Is(err, identitydomain.ErrNotFound) {
		t.Errorf("GetGroup(deleted) = %v", err)
	}
}

func TestMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	c := f.c
	var users []string
	for _, n := range []string{"ann", "ben", "cat", "dan"} {
		users = append(users, deref(mustCreateUser(t, c, n).Id))
	}
	g := mustCreateGroup(t, c, "crew", "")
	gid := deref(g.Id)

	r, err := c.AddMembers(ctx, gid, users[:3]...)
	if err != nil || r.Outcome != identitydomain.OutcomeUpdated || r.RequestID == "" {
		t.Fatalf("AddMembers = %+v, %v", r, err)
	}
	patches := f.d.CallCount("PatchGroup")
	if patches != 1 {
		t.Errorf("AddMembers sent %d PATCHes, want 1", patches)
	}
	// Adding an existing member again is fine.
	if _, err := c.AddMembers(ctx, gid, users[0]); err != nil {
		t.Errorf("AddMembers(existing member): %v", err)
	}
	if got := memberIDs(t, c, gid, 2); !slices.Equal(got, sorted(users[:3])) {
		t.Errorf("members = %v, want %v", got, sorted(users[:3]))
	}
	groups, err := c.UserGroups(ctx, users[1])
	if err != nil || len(groups) != 1 || deref(groups[0].Value) != gid || deref(groups[0].Display) != "crew" {
		t.Errorf("UserGroups = %+v, %v", groups, err)
	}

	// Remove a member and a non-member together: success, the member is gone.
	r, err = c.RemoveMembers(ctx, gid, users[0], users[3])
	if err != nil || r.Outcome != identitydomain.OutcomeUpdated {
		t.Fatalf("RemoveMembers(member, non-member) = %+v, %v", r, err)
	}
	if got := memberIDs(t, c, gid, 0); !slices.Equal(got, sorted(users[1:3])) {
		t.Errorf("members = %v, want %v", got, sorted(users[1:3]))
	}
	// Remove only non-members: success, nothing changed.
	r, err = c.RemoveMembers(ctx, gid, users[0], users[3])
	if err != nil || r.Outcome != identitydomain.OutcomeUnchanged {
		t.Fatalf("RemoveMembers(non-members) = %+v, %v", r, err)
	}
	r, err = c.RemoveMembers(ctx, gid, users[3])
	if err != nil || r.Outcome != identitydomain.OutcomeUnchanged {
		t.Fatalf("RemoveMembers(one non-member) = %+v, %v", r, err)
	}
	// Remove the rest in one PATCH.
	before := f.d.CallCount("PatchGroup")
	if r, err := c.RemoveMembers(ctx, gid, users[1], users[2]); err != nil || r.Outcome != identitydomain.OutcomeUpdated {
		t.Fatalf("RemoveMembers(rest) = %+v, %v", r, err)
	}
	if n := f.d.CallCount("PatchGroup") - before; n != 1 {
		t.Errorf("RemoveMembers of members sent %d PATCHes, want 1", n)
	}
	if got := memberIDs(t, c, gid, 0); len(got) != 0 {
		t.Errorf("members left: %v", got)
	}
	// Members of a missing group: NotFound.
	if _, err := c.AddMembers(ctx, "0000", users[0]); !errors.Is(err, identitydomain.ErrNotFound) {
		t.Errorf("AddMembers(missing group) = %v", err)
	}
	// An unknown user id is an invalid request.
	if _, err := c.AddMembers(ctx, gid, "nosuchuser"); !errors.Is(err, identitydomain.ErrInvalidRequest) {
		t.Errorf("AddMembers(unknown user) = %v", err)
	}
}

// memberIDs reads the group's members, pageSize at a time (0: the
// client's default), and returns their ids sorted; every member must be a
// user.
func memberIDs(t testing.TB, c *identitydomain.Client, gid string, pageSize int) []string {
	t.Helper()
	var out []string
	for m, err := range c.GroupMembers(context.Background(), gid, pageSize) {
		if err != nil {
			t.Fatalf("GroupMembers: %v", err)
		}
		if m.Type != identitydomains.GroupMembersTypeUser {
			t.Errorf("member type %q", m.Type)
		}
		out = append(out, deref(m.Value))
	}
	return sorted(out)
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func TestCapabilities(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	u := mustCreateUser(t, f.c, "carol")
	id := deref(u.Id)

	caps, err := f.c.GetCapabilities(ctx, id)
	if err != nil {
		t.Fatalf("GetCapabilities: %v", err)
	}
	if caps.CanUseApiKeys == nil || !*caps.CanUseApiKeys || caps.CanUseAuthTokens == nil || !*caps.CanUseAuthTokens {
		t.Errorf("new user's capabilities = apiKeys %v authTokens %v, want true", caps.CanUseApiKeys, caps.CanUseAuthTokens)
	}
	caps.CanUseApiKeys = common.Bool(false)
	caps.CanUseDbCredentials = common.Bool(false)
	caps.UrnIetfParamsScimSchemasOracleIdcsExtensionSelfChangeUser = &identitydomains.ExtensionSelfChangeUser{AllowSelfChange: common.Bool(true)}
	got, r, err := f.c.SetCapabilities(ctx, id, caps, "")
	if err != nil {
		t.Fatalf("SetCapabilities: %v", err)
	}
	if *got.CanUseApiKeys || *got.CanUseDbCredentials || !*got.CanUseAuthTokens || r.Outcome != identitydomain.OutcomeUpdated || r.RequestID == "" {
		t.Errorf("SetCapabilities = apiKeys %v db %v authTokens %v, receipt %+v", *got.CanUseApiKeys, *got.CanUseDbCredentials, *got.CanUseAuthTokens, r)
	}
	if n := f.d.CallCount("PutUserCapabilitiesChanger"); n != 1 {
		t.Errorf("%d PUT UserCapabilitiesChanger, want 1", n)
	}
	after, err := f.c.GetCapabilities(ctx, id)
	if err != nil || *after.CanUseApiKeys || *after.CanUseDbCredentials || !*after.CanUseConsolePassword {
		t.Fatalf("GetCapabilities after set = %+v, %v", after, err)
	}
	if sc := after.UrnIetfParamsScimSchemasOracleIdcsExtensionSelfChangeUser; sc == nil || !*sc.AllowSelfChange {
		t.Errorf("allowSelfChange = %+v", sc)
	}
	if emuUser, _ := f.d.User(id); emuUser.Capabilities["canUseApiKeys"] || !emuUser.Capabilities["canUseAuthTokens"] {
		t.Errorf("emulator capabilities = %v", emuUser.Capabilities)
	}
	// Stale If-Match: the version read before the change.
	if _, _, err := f.c.SetCapabilities(ctx, id, caps, *caps.Meta.Version); !errors.Is(err, identitydomain.ErrPreconditionFailed) {
		t.Errorf("SetCapabilities(stale) = %v, want PreconditionFailed", err)
	}
	if _, _, err := f.c.SetCapabilities(ctx, id, caps, *after.Meta.Version); err != nil {
		t.Errorf("SetCapabilities(current version) = %v", err)
	}
	if _, err := f.c.GetCapabilities(ctx, "0000"); !errors.Is(err, identitydomain.ErrNotFound) {
		t.Errorf("GetCapabilities(missing) = %v", err)
	}
}
