package identitydomain_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/scimtest/external"
	"github.com/iamflow/iamflow/internal/testutil"
)

// externalClient starts the external SCIM server and a client for it.
func externalClient(t *testing.T) (*identitydomain.Client, *prometheus.Registry, *testutil.SyncBuffer) {
	t.Helper()
	srv := external.Start(t)
	cfg := identitydomain.DefaultConfig()
	cfg.URL, cfg.SCIMPath = srv.URL, srv.Path
	cfg.Auth, cfg.StaticToken = identitydomain.AuthStatic, srv.TokenRef(t)
	cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	cfg.Retry.MaxAttempts = 2
	reg, logs := prometheus.NewRegistry(), &testutil.SyncBuffer{}
	c, err := identitydomain.New(context.Background(), "ext", cfg, identitydomain.WithRegisterer(reg),
		identitydomain.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, reg, logs
}

// TestExternalDiscovery: the external server's discovery is read, and what
// it does not keep (Oracle's extensions) is not declared.
func TestExternalDiscovery(t *testing.T) {
	t.Parallel()
	c, _, _ := externalClient(t)
	caps := mustCapabilities(t, c)
	if !caps.Discovered || caps.ETag || !caps.Filter || !caps.Sort || !caps.Patch {
		t.Errorf("capabilities = %+v", caps)
	}
	checkDeclares(t, caps, []declared{
		{"User", "userName", true},
		{"User", "name.givenName", true},
		{"User", "emails", true},
		{"User", "groups", true},
		{"User", identitydomain.SchemaEnterpriseUser + ":department", true},
		{"User", identitydomain.SchemaUserExtension + ":isFederatedUser", false},
		{"Group", "members", true},
		{"Group", identitydomain.SchemaGroupExtension + ":description", false},
	})
}

// TestExternalUsers: create, read, find, patch, list (past the server's
// broken query paging) and delete users.
func TestExternalUsers(t *testing.T) {
	t.Parallel()
	c, reg, _ := externalClient(t)
	ctx := context.Background()
	var want []string
	for i := range 29 {
		u, r, err := c.CreateUser(ctx, newUser(fmt.Sprintf("user%02d", i)))
		if err != nil || r.Outcome != identitydomain.OutcomeCreated {
			t.Fatalf("CreateUser: %v (%v)", err, r.Outcome)
		}
		want = append(want, *u.Id)
	}
	slices.Sort(want)
	if _, _, err := c.CreateUser(ctx, newUser("USER03")); !errors.Is(err, identitydomain.ErrConflict) {
		t.Errorf("duplicate userName: %v, want Conflict", err)
	}

	for _, size := range []int{10, 1000} {
		ids, err := listUsers(c, size)
		slices.Sort(ids)
		if err != nil || !slices.Equal(ids, want) {
			t.Fatalf("page size %d: %d users, %v; want all 29", size, len(ids), err)
		}
	}
	if n := counter(t, reg, "iamflow_identitydomain_paging_faults_total", nil); n < 1 {
		t.Error("the server's broken GET paging was not seen")
	}
	var names []string
	for u, err := range c.Users(ctx, identitydomain.ListOptions{Filter: `userName sw "user1"`, SortBy: "userName", Descending: true, PageSize: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, *u.UserName)
	}
	if len(names) != 10 || names[0] != "user19" || names[9] != "user10" {
		t.Errorf("filtered, sorted descending = %v", names)
	}

	u, found, err := c.FindUserByName(ctx, "user07")
	if err != nil || !found || *u.UserName != "user07" {
		t.Fatalf("FindUserByName = %v, %v, %v", deref(u.UserName), found, err)
	}
	if _, found, err := c.FindUserByName(ctx, "nobody"); err != nil || found {
		t.Errorf("FindUserByName(nobody) = %v, %v", found, err)
	}
	got, err := c.GetUser(ctx, *u.Id)
	if err != nil || deref(got.Name.GivenName) != "Test" || len(got.Emails) != 1 {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}
	p, _, err := c.PatchUser(ctx, *u.Id, `W/"x"`, identitydomain.Replace("displayName", "Seven"), identitydomain.Replace("name.givenName", "Sev"))
	if err != nil {
		t.Fatalf("PatchUser (an If-Match the server cannot check is not sent): %v", err)
	}
	if deref(p.DisplayName) != "Seven" || deref(p.Name.GivenName) != "Sev" {
		t.Errorf("patched user = %q %q", deref(p.DisplayName), deref(p.Name.GivenName))
	}
	if r, err := c.DeleteUser(ctx, *u.Id, ""); err != nil || r.Outcome != identitydomain.OutcomeDeleted {
		t.Fatalf("DeleteUser = %v, %v", r.Outcome, err)
	}
	if r, err := c.DeleteUser(ctx, *u.Id, ""); err != nil || r.Outcome != identitydomain.OutcomeAlreadyGone {
		t.Errorf("second DeleteUser = %v, %v", r.Outcome, err)
	}
	if _, err := c.GetUser(ctx, *u.Id); !errors.Is(err, identitydomain.ErrNotFound) {
		t.Errorf("GetUser after delete: %v", err)
	}
}

// TestExternalGroups: groups and memberships on a server that rejects
// member paging, drops Oracle's group extension and does not cascade user
// deletes.
func TestExternalGroups(t *testing.T) {
	t.Parallel()
	c, reg, _ := externalClient(t)
	ctx := context.Background()
	g := mustCreateGroup(t, c, "Ops", "src-ops")
	var ids []string
	for i := range 3 {
		u := mustCreateUser(t, c, fmt.Sprintf("op%d", i))
		ids = append(ids, *u.Id)
	}
	slices.Sort(ids)
	if _, err := c.AddMembers(ctx, *g.Id, ids...); err != nil {
		t.Fatalf("AddMembers: %v", err)
	}
	if got := memberIDs(t, c, *g.Id, 0); !slices.Equal(got, ids) {
		t.Fatalf("members = %v, want %v", got, ids)
	}
	if n := counter(t, reg, "iamflow_identitydomain_paging_faults_total", map[string]string{"fault": "member_paging_rejected"}); n != 1 {
		t.Errorf("member paging rejection counted %v times", n)
	}
	if gm, err := c.GetGroupWithMembers(ctx, *g.Id, "displayName", "externalId"); err != nil || len(gm.Members) != 3 || deref(gm.ExternalId) != "src-ops" {
		t.Errorf("GetGroupWithMembers = %d members, externalId %q, %v", len(gm.Members), deref(gm.ExternalId), err)
	}
	if groups, err := c.UserGroups(ctx, ids[0]); err != nil || len(groups) != 1 || deref(groups[0].Value) != *g.Id {
		t.Errorf("UserGroups = %+v, %v", groups, err)
	}
	if found, ok, err := c.FindGroupByExternalID(ctx, "src-ops"); err != nil || !ok || *found.Id != *g.Id {
		t.Errorf("FindGroupByExternalID = %v, %v", ok, err)
	}
	if _, err := c.RemoveMembers(ctx, *g.Id, ids[1]); err != nil {
		t.Fatalf("RemoveMembers: %v", err)
	}
	if _, err := c.RemoveMembers(ctx, *g.Id, ids[1]); err != nil {
		t.Errorf("removing a non-member: %v", err)
	}
	// No cascade: a deleted user stays listed until removed.
	if _, err := c.DeleteUser(ctx, ids[0], ""); err != nil {
		t.Fatal(err)
	}
	if got := memberIDs(t, c, *g.Id, 0); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Fatalf("members after deleting a member = %v", got)
	}
	if _, err := c.RemoveMembers(ctx, *g.Id, ids[0]); err != nil {
		t.Fatalf("remove the dangling member: %v", err)
	}
	if got := memberIDs(t, c, *g.Id, 0); !slices.Equal(got, []string{ids[2]}) {
		t.Errorf("members = %v", got)
	}
	// The dropped extension: accepted on create, never kept; a PATCH of it
	// is refused and does not stop a PATCH of something else.
	if got, err := c.GetGroup(ctx, *g.Id); err != nil || got.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup != nil {
		t.Errorf("the group extension was kept: %+v, %v", got.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup, err)
	}
	_, _, err := c.PatchGroup(ctx, *g.Id, "", identitydomain.Replace(identitydomain.SchemaGroupExtension+":description", "x"))
	t.Logf("PATCH of the undeclared extension: %v", err)
	if _, _, err := c.PatchGroup(ctx, *g.Id, "", identitydomain.Replace("displayName", "Operations")); err != nil {
		t.Errorf("rename: %v", err)
	}
	var names []string
	for gr, err := range c.Groups(ctx, identitydomain.ListOptions{Attributes: []string{"displayName", "members"}}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, *gr.DisplayName)
		if len(gr.Members) != 1 {
			t.Errorf("listed group has %d members", len(gr.Members))
		}
	}
	if !slices.Equal(names, []string{"Operations"}) {
		t.Errorf("groups = %v", names)
	}
	if r, err := c.DeleteGroup(ctx, *g.Id, ""); err != nil || r.Outcome != identitydomain.OutcomeDeleted {
		t.Errorf("DeleteGroup = %v, %v", r.Outcome, err)
	}
}

// TestExternalBulk: SCIMMY's Bulk (its routers serve /Bulk, its
// ServiceProviderConfig advertises it): users, a group naming them by
// bulkId, a PATCH of that group by its bulkId and a DELETE of nobody come
// back one result each, matched to their operations, and the group holds
// both users.
func TestExternalBulk(t *testing.T) {
	t.Parallel()
	c, _, _ := externalClient(t)
	ctx := context.Background()
	caps := mustCapabilities(t, c)
	if !caps.Bulk.Supported {
		t.Fatalf("the external server does not advertise Bulk (%+v)", caps.Bulk)
	}
	ops := []identitydomain.BulkOperation{
		{Method: "POST", Path: "/Users", BulkID: "a", Data: bulkUser("bulk-a")},
		{Method: "POST", Path: "/Users", BulkID: "b", Data: bulkUser("bulk-b")},
		{Method: "POST", Path: "/Groups", BulkID: "g", Data: bulkGroup("bulk-pair", "bulkId:a")},
		{Method: "PATCH", Path: "/Groups/bulkId:g", Data: patchOp(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": "bulkId:b"}}})},
		{Method: "DELETE", Path: "/Users/no-such-user"},
		// An SDK struct, as the replicator sends: its unset attributes are
		// not sent as null (SCIMMY refuses a null where it wants a list).
		{Method: "POST", Path: "/Users", BulkID: "c", Data: identitydomain.UserWithSchemas(newUser("bulk-c"))},
	}
	res, err := c.Bulk(ctx, ops, identitydomain.BulkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range append(res[:4:4], res[5]) {
		if r.Err != nil || r.ID == "" {
			t.Fatalf("operation %d: %+v", i, r)
		}
	}
	if res[4].Err == nil {
		t.Errorf("delete of nobody: %+v, want an error", res[4])
	}
	a, found, err := c.FindUserByName(ctx, "bulk-a")
	if err != nil || !found || *a.Id != res[0].ID {
		t.Fatalf("user a: %v %v, result id %s", found, err, res[0].ID)
	}
	g, err := c.GetGroup(ctx, res[2].ID, "members")
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, m := range g.Members {
		members = append(members, *m.Value)
	}
	slices.Sort(members)
	want := []string{res[0].ID, res[1].ID}
	slices.Sort(want)
	if !slices.Equal(members, want) {
		t.Errorf("group members %v, want %v (a by the POST's bulkId, b by the PATCH's)", members, want)
	}
}
