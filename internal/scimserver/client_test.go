package scimserver

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/secret"
)

// client is iamflow's own Identity Domains client pointed at the harness,
// as the replicator, the DB provisioner and expiry read a pushed source.
func (h *harness) client() *identitydomain.Client {
	h.t.Helper()
	p := filepath.Join(h.t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(testToken), 0o600); err != nil {
		h.t.Fatal(err)
	}
	cfg := identitydomain.DefaultConfig()
	cfg.URL, cfg.SCIMPath = h.http.URL, "/scim/v2/idp"
	cfg.Auth, cfg.StaticToken = identitydomain.AuthStatic, secret.Ref("file:"+p)
	cfg.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	c, err := identitydomain.New(context.Background(), "idp", cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(c.Close)
	return c
}

func sptr(s string) *string { return &s }

// TestOwnClient reads and writes a pushed source with the client every
// consumer uses: discovery, lookups, paging, members, ETags.
func TestOwnClient(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	caps, err := c.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Discovered || !caps.ETag || !caps.Filter || !caps.Patch || caps.Bulk.Supported || caps.FilterMaxResults != DefaultMaxResults {
		t.Fatalf("capabilities = %+v", caps)
	}
	for _, p := range []string{"userName", "emails", "name.givenName", "active", SchemaEnterpriseUser + ":department"} {
		if !caps.Declares("User", p) {
			t.Errorf("User does not declare %s", p)
		}
	}
	if !caps.Declares("Group", "members") || caps.Declares("User", "urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User:isFederatedUser") {
		t.Error("declarations of Group.members / an Oracle extension are wrong")
	}

	// 250 users, listed 40 at a time: the client checks every paging invariant.
	var ids []string
	for i := range 250 {
		u, _, err := c.CreateUser(ctx, identitydomains.User{Schemas: []string{SchemaUser}, UserName: sptr(userName(i)),
			ExternalId: sptr("ext-" + userName(i)), Active: boolPtr(true)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *u.Id)
	}
	var listed []string
	for u, err := range c.Users(ctx, identitydomain.ListOptions{PageSize: 40, Attributes: []string{"userName"}}) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, *u.Id)
	}
	if !sameSet(listed, ids) {
		t.Fatalf("listed %d users, created %d", len(listed), len(ids))
	}
	u, found, err := c.FindUserByName(ctx, "USER-0007@example.com") // userName is caseExact=false
	if err != nil || !found || *u.Id != ids[7] {
		t.Fatalf("FindUserByName = %v %v %v", u.Id, found, err)
	}
	if _, found, err := c.FindUserByName(ctx, "nobody@example.com"); err != nil || found {
		t.Fatalf("FindUserByName(nobody) = %v %v", found, err)
	}
	if u, found, err := c.FindUserByExternalID(ctx, "ext-"+userName(9)); err != nil || !found || *u.Id != ids[9] {
		t.Fatalf("FindUserByExternalID = %v %v", found, err)
	}

	// ETags: a stale If-Match is refused, the current one accepted.
	got, err := c.GetUser(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PatchUser(ctx, ids[0], `W/"99"`, identitydomain.Replace("displayName", "x")); !identitydomain.IsKind(err, identitydomain.KindPreconditionFailed) {
		t.Fatalf("stale If-Match: %v", err)
	}
	if _, _, err := c.PatchUser(ctx, ids[0], *got.Meta.Version, identitydomain.Replace("displayName", "Zero")); err != nil {
		t.Fatalf("current If-Match: %v", err)
	}

	g, _, err := c.CreateGroup(ctx, identitydomains.Group{Schemas: []string{SchemaGroup}, DisplayName: sptr("Engineers")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddMembers(ctx, *g.Id, ids[:120]...); err != nil {
		t.Fatal(err)
	}
	// Removing members who are not (all) members succeeds.
	if _, err := c.RemoveMembers(ctx, *g.Id, ids[100], ids[200]); err != nil {
		t.Fatal(err)
	}
	var members []string
	for m, err := range c.GroupMembers(ctx, *g.Id, 25) {
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, *m.Value)
	}
	want := slices.Concat(ids[:100], ids[101:120])
	if !sameSet(members, want) {
		t.Fatalf("members: %d, want %d", len(members), len(want))
	}
	gm, err := c.GetGroupWithMembers(ctx, *g.Id, "displayName")
	if err != nil || len(gm.Members) != len(want) {
		t.Fatalf("GetGroupWithMembers: %d members, %v", len(gm.Members), err)
	}
	ug, err := c.UserGroups(ctx, ids[3])
	if err != nil || len(ug) != 1 || *ug[0].Value != *g.Id || *ug[0].Display != "Engineers" {
		t.Fatalf("UserGroups = %v, %v", ug, err)
	}
	if gg, found, err := c.FindGroupByName(ctx, "engineers"); err != nil || !found || *gg.Id != *g.Id {
		t.Fatalf("FindGroupByName = %v %v", found, err)
	}
	if _, err := c.DeleteUser(ctx, ids[3], ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(ctx, ids[3]); !identitydomain.IsKind(err, identitydomain.KindNotFound) {
		t.Fatalf("deleted user: %v", err)
	}
	if ug, err := c.UserGroups(ctx, ids[4]); err != nil || len(ug) != 1 {
		t.Fatal(ug, err)
	}
	gm, _ = c.GetGroupWithMembers(ctx, *g.Id, "displayName")
	if len(gm.Members) != len(want)-1 {
		t.Fatalf("a deleted user stays a member: %d members", len(gm.Members))
	}
	if _, err := c.DeleteGroup(ctx, *g.Id, ""); err != nil {
		t.Fatal(err)
	}
	if ug, err := c.UserGroups(ctx, ids[4]); err != nil || len(ug) != 0 {
		t.Fatalf("after the group's delete, UserGroups = %v %v", ug, err)
	}
}

func userName(i int) string { return "user-" + pad(i) + "@example.com" }

func pad(i int) string {
	s := "0000" + itoa(i)
	return s[len(s)-4:]
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func boolPtr(b bool) *bool { return &b }

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}
