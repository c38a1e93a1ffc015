package identitydomain_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/emulator/identitydomain"
)

// These tests drive the emulator with the real oci-go-sdk client: the
// vendor's models, paths, query encoding and upper-case PATCH ops.

var (
	hex32RE = regexp.MustCompile(`^[0-9a-f]{32}$`)
	timeRE  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

func anyValue(v any) *interface{} { return &v }

func TestSDKUserLifecycle(t *testing.T) {
	d := start(t, baseConfig())
	c := newSDK(t, d)
	ctx := context.Background()

	created, err := c.CreateUser(ctx, identitydomains.CreateUserRequest{User: identitydomains.User{
		Schemas:  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		UserName: common.String("alice@example.com"),
		Name:     &identitydomains.UserName{GivenName: common.String("Alice"), FamilyName: common.String("Liddell")},
		Emails: []identitydomains.UserEmails{{Value: common.String("alice@example.com"),
			Type: identitydomains.UserEmailsTypeWork, Primary: common.Bool(true)}},
	}})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	u := created.User
	id := *u.Id
	if !hex32RE.MatchString(id) || !strings.HasPrefix(*u.Ocid, "ocid1.user.oc1..") {
		t.Errorf("id %q ocid %q", id, *u.Ocid)
	}
	if u.Meta == nil || *u.Meta.ResourceType != "User" || !timeRE.MatchString(*u.Meta.Created) ||
		!hex32RE.MatchString(*u.Meta.Version) || *u.Meta.Location != d.URL()+"/admin/v1/Users/"+id {
		t.Errorf("meta = %+v", u.Meta)
	}
	if created.Etag == nil || *created.Etag != `W/"`+*u.Meta.Version+`"` {
		t.Errorf("etag %v, version %s", created.Etag, *u.Meta.Version)
	}
	if u.Active == nil || !*u.Active {
		t.Errorf("active = %v, want true by default", u.Active)
	}
	if ext := u.UrnIetfParamsScimSchemasOracleIdcsExtensionUserUser; ext == nil || ext.IsFederatedUser == nil || *ext.IsFederatedUser {
		t.Errorf("user extension = %+v, want isFederatedUser false", ext)
	}
	if u.IdcsCreatedBy == nil || *u.IdcsCreatedBy.Value != clientID || u.IdcsCreatedBy.Type != identitydomains.IdcsCreatedByTypeApp {
		t.Errorf("idcsCreatedBy = %+v", u.IdcsCreatedBy)
	}
	if *u.DomainOcid != d.Config().DomainOCID || *u.TenancyOcid != d.Config().TenancyOCID {
		t.Errorf("domainOcid %s tenancyOcid %s", *u.DomainOcid, *u.TenancyOcid)
	}
	if u.Password != nil || u.Groups != nil {
		t.Errorf("password or groups returned by default")
	}

	got, err := c.GetUser(ctx, identitydomains.GetUserRequest{UserId: &id})
	if err != nil || *got.UserName != "alice@example.com" || *got.Name.GivenName != "Alice" {
		t.Fatalf("GetUser = %+v, %v", got.User, err)
	}
	if _, err := c.GetUser(ctx, identitydomains.GetUserRequest{UserId: common.String("0000")}); status(err) != 404 {
		t.Errorf("GetUser(unknown) err = %v, want 404", err)
	}

	list, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{Filter: common.String(`userName eq "ALICE@example.com"`)})
	if err != nil || *list.TotalResults != 1 || *list.Resources[0].Id != id {
		t.Fatalf("ListUsers(filter) = %+v, %v", list.Users, err)
	}
	search, err := c.SearchUsers(ctx, identitydomains.SearchUsersRequest{UserSearchRequest: identitydomains.UserSearchRequest{
		Schemas:    []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
		Filter:     common.String(`emails.value co "@example.com"`),
		Attributes: []string{"userName"},
		StartIndex: common.Int(1), Count: common.Int(10),
	}})
	if err != nil || *search.TotalResults != 1 || *search.Resources[0].UserName != "alice@example.com" || search.Resources[0].Emails != nil {
		t.Fatalf("SearchUsers = %+v, %v", search.Users, err)
	}

	patched, err := c.PatchUser(ctx, identitydomains.PatchUserRequest{UserId: &id, PatchOp: identitydomains.PatchOp{
		Schemas: []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		Operations: []identitydomains.Operations{
			{Op: identitydomains.OperationsOpReplace, Path: common.String("active"), Value: anyValue(false)},
			{Op: identitydomains.OperationsOpReplace, Path: common.String("name.givenName"), Value: anyValue("Alicia")},
			{Op: identitydomains.OperationsOpAdd, Path: common.String("emails"), Value: anyValue([]any{
				map[string]any{"value": "alice@home.example", "type": "home"}})},
			{Op: identitydomains.OperationsOpRemove, Path: common.String(`emails[type eq "home"].value`)},
			{Op: identitydomains.OperationsOpReplace, Path: common.String(`emails[type eq "home"].value`), Value: anyValue("a@home.example")},
		},
	}})
	if err != nil {
		t.Fatalf("PatchUser: %v", err)
	}
	pu := patched.User
	if *pu.Active || *pu.Name.GivenName != "Alicia" || len(pu.Emails) != 2 || *pu.Emails[1].Value != "a@home.example" {
		t.Fatalf("patched user = active %v name %v emails %+v", *pu.Active, *pu.Name.GivenName, pu.Emails)
	}
	if *pu.Meta.Version == *u.Meta.Version {
		t.Error("meta.version did not change on PATCH")
	}

	put, err := c.PutUser(ctx, identitydomains.PutUserRequest{UserId: &id, User: identitydomains.User{
		Schemas:     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		UserName:    common.String("alice@example.com"),
		DisplayName: common.String("Alice L."),
		Active:      common.Bool(true),
	}})
	if err != nil {
		t.Fatalf("PutUser: %v", err)
	}
	if *put.DisplayName != "Alice L." || put.Name != nil || put.Emails != nil || !*put.Active {
		t.Errorf("PUT did not replace: %+v", put.User)
	}

	if _, err := c.DeleteUser(ctx, identitydomains.DeleteUserRequest{UserId: &id, ForceDelete: common.Bool(true)}); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := c.GetUser(ctx, identitydomains.GetUserRequest{UserId: &id}); status(err) != 404 {
		t.Errorf("GetUser after delete: %v, want 404", err)
	}
	if _, err := c.DeleteUser(ctx, identitydomains.DeleteUserRequest{UserId: &id}); status(err) != 404 {
		t.Errorf("DeleteUser twice: %v, want 404", err)
	}
	for op, want := range map[identitydomain.Operation]int64{
		identitydomain.OpCreateUser: 1, identitydomain.OpGetUser: 3, identitydomain.OpListUsers: 1,
		identitydomain.OpSearchUsers: 1, identitydomain.OpPatchUser: 1, identitydomain.OpPutUser: 1, identitydomain.OpDeleteUser: 2,
	} {
		if got := d.CallCount(op); got != want {
			t.Errorf("CallCount(%s) = %d, want %d", op, got, want)
		}
	}
}

func TestSDKGroupLifecycle(t *testing.T) {
	d := start(t, baseConfig())
	c := newSDK(t, d)
	ctx := context.Background()
	tok := getToken(t, d)
	var uids []string
	for _, n := range []string{"u1", "u2", "u3"} {
		uids = append(uids, mustCreate(t, d, tok, "Users", userBody(n+"@example.com")))
	}

	created, err := c.CreateGroup(ctx, identitydomains.CreateGroupRequest{Group: identitydomains.Group{
		Schemas: []string{"urn:ietf:params:scim:schemas:core:2.0:Group",
			"urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group",
			"urn:ietf:params:scim:schemas:extension:custom:2.0:Group"},
		DisplayName: common.String("Admins"),
		UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup: &identitydomains.ExtensionGroupGroup{Description: common.String("The admins")},
		Members: []identitydomains.GroupMembers{{Value: &uids[0], Type: identitydomains.GroupMembersTypeUser}},
	}})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	gid := *created.Id
	if created.Members != nil {
		t.Errorf("members returned without being asked for: %+v", created.Members)
	}
	if *created.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup.Description != "The admins" {
		t.Errorf("description = %v", created.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup)
	}

	_, err = c.PatchGroup(ctx, identitydomains.PatchGroupRequest{GroupId: &gid, PatchOp: identitydomains.PatchOp{
		Schemas: []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		Operations: []identitydomains.Operations{
			{Op: identitydomains.OperationsOpAdd, Path: common.String("members"), Value: anyValue([]any{
				map[string]any{"value": uids[1], "type": "User"}, map[string]any{"value": uids[2], "type": "User"}})},
			{Op: identitydomains.OperationsOpRemove, Path: common.String(`members[value eq "` + uids[0] + `"]`)},
			{Op: identitydomains.OperationsOpReplace, Path: common.String("displayName"), Value: anyValue("Administrators")},
			{Op: identitydomains.OperationsOpReplace, Path: common.String("urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group:description"),
				Value: anyValue("All the admins")},
		},
	}})
	if err != nil {
		t.Fatalf("PatchGroup: %v", err)
	}
	got, err := c.GetGroup(ctx, identitydomains.GetGroupRequest{GroupId: &gid,
		AttributeSets: []identitydomains.AttributeSetsEnum{identitydomains.AttributeSetsAll}})
	if err != nil {
		t.Fatalf("GetGroup: %v", err)
	}
	if *got.DisplayName != "Administrators" || *got.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup.Description != "All the admins" {
		t.Errorf("group = %s / %v", *got.DisplayName, got.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup)
	}
	var members []string
	for _, m := range got.Members {
		members = append(members, *m.Value)
		if m.Type != identitydomains.GroupMembersTypeUser || m.Ocid == nil || m.MembershipOcid == nil ||
			m.DateAdded == nil || m.Ref == nil || m.Display == nil || m.Name == nil {
			t.Errorf("member = %+v", m)
		}
	}
	if !slices.Equal(members, uids[1:]) {
		t.Errorf("members = %v, want %v", members, uids[1:])
	}

	// The user side: groups is returned on request.
	gu, err := c.GetUser(ctx, identitydomains.GetUserRequest{UserId: &uids[1], Attributes: common.String("groups")})
	if err != nil || len(gu.Groups) != 1 || *gu.Groups[0].Value != gid || *gu.Groups[0].Display != "Administrators" {
		t.Fatalf("user groups = %+v, %v", gu.Groups, err)
	}
	if gu.Emails != nil || gu.UserName == nil {
		t.Errorf("attributes=groups returned more than always+groups: %+v", gu.User)
	}

	byMember, err := c.ListGroups(ctx, identitydomains.ListGroupsRequest{Filter: common.String(`members[value eq "` + uids[2] + `"]`)})
	if err != nil || *byMember.TotalResults != 1 || *byMember.Resources[0].Id != gid {
		t.Fatalf("ListGroups(members filter) = %+v, %v", byMember.Groups, err)
	}
	sg, err := c.SearchGroups(ctx, identitydomains.SearchGroupsRequest{GroupSearchRequest: identitydomains.GroupSearchRequest{
		Schemas: []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
		Filter:  common.String(`displayName sw "admin"`), Attributes: []string{"members"},
	}})
	if err != nil || *sg.TotalResults != 1 || len(sg.Resources[0].Members) != 2 {
		t.Fatalf("SearchGroups = %+v, %v", sg.Groups, err)
	}

	put, err := c.PutGroup(ctx, identitydomains.PutGroupRequest{GroupId: &gid, Group: identitydomains.Group{
		Schemas:     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		DisplayName: common.String("Admins"),
		Members:     []identitydomains.GroupMembers{{Value: &uids[0], Type: identitydomains.GroupMembersTypeUser}},
	}, Attributes: common.String("members,displayName")})
	if err != nil || *put.DisplayName != "Admins" || len(put.Members) != 1 || *put.Members[0].Value != uids[0] {
		t.Fatalf("PutGroup = %+v, %v", put.Group, err)
	}
	if put.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup != nil {
		t.Errorf("PUT kept the description it did not send")
	}
	if _, err := c.DeleteGroup(ctx, identitydomains.DeleteGroupRequest{GroupId: &gid}); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	if u, _ := d.User(uids[0]); len(u.Groups) != 0 {
		t.Errorf("user still in deleted group: %v", u.Groups)
	}
	if st := d.Stats(); st.Groups != 0 || st.Memberships != 0 || st.Users != 3 {
		t.Errorf("stats after delete = %+v", st)
	}
}

// filterDirectory seeds the users the filter tests query.
func filterDirectory(t *testing.T, d *identitydomain.Domain) {
	t.Helper()
	seed := `
users:
  - {userName: alice, displayName: Alice Liddell, title: Engineer, nickName: Al,
     emails: [{value: alice@example.com, type: work, primary: true}, {value: alice@home.org, type: home}],
     urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User: {isFederatedUser: true}}
  - {userName: bob, displayName: Bob Builder, active: false,
     emails: [{value: bob@example.org, type: work}]}
  - {userName: carol, displayName: Carol Danvers, title: Pilot,
     emails: [{value: carol@example.com, type: home}]}
  - {userName: dave, displayName: Dave Bowman}
groups:
  - {displayName: pilots, members: [carol, alice]}
  - {displayName: builders, members: [bob]}
`
	if err := d.Seed(strings.NewReader(seed)); err != nil {
		t.Fatal(err)
	}
}

func TestSDKFilters(t *testing.T) {
	d := start(t, baseConfig())
	filterDirectory(t, d)
	c := newSDK(t, d)
	ctx := context.Background()
	pilots, _ := d.GroupByName("pilots")
	aliceSnap, _ := d.UserByName("alice")
	tests := []struct {
		filter string
		want   []string
	}{
		{`userName eq "alice"`, []string{"alice"}},
		{`userName eq "ALICE"`, []string{"alice"}},
		{`userName ne "alice"`, []string{"bob", "carol", "dave"}},
		{`displayName co "AN"`, []string{"carol", "dave"}},
		{`userName sw "c"`, []string{"carol"}},
		{`displayName ew "er"`, []string{"bob"}},
		{`title pr`, []string{"alice", "carol"}},
		{`userName gt "bob"`, []string{"carol", "dave"}},
		{`userName ge "bob"`, []string{"bob", "carol", "dave"}},
		{`userName lt "bob"`, []string{"alice"}},
		{`userName le "bob"`, []string{"alice", "bob"}},
		{`active eq false`, []string{"bob"}},
		{`active eq true and title pr`, []string{"alice", "carol"}},
		{`title eq "Pilot" or userName eq "dave"`, []string{"carol", "dave"}},
		{`not (title pr)`, []string{"bob", "dave"}},
		{`(userName eq "alice" or userName eq "bob") and active eq true`, []string{"alice"}},
		{`userName eq "alice" or userName eq "bob" and active eq true`, []string{"alice"}},
		{`emails[type eq "work" and value co "@example.com"]`, []string{"alice"}},
		{`emails[type eq "home"]`, []string{"alice", "carol"}},
		{`emails.value ew ".org"`, []string{"alice", "bob"}},
		{`emails co "carol@"`, []string{"carol"}},
		{`urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User:isFederatedUser eq true`, []string{"alice"}},
		{`urn:ietf:params:scim:schemas:oracle:idcs:extension:capabilities:User:canUseApiKeys eq true`, []string{"alice", "bob", "carol", "dave"}},
		{`groups.value eq "` + pilots.ID + `"`, []string{"alice", "carol"}},
		{`groups[value eq "` + pilots.ID + `"] and title eq "pilot"`, []string{"carol"}},
		{`meta.created ge "2000-01-01T00:00:00Z"`, []string{"alice", "bob", "carol", "dave"}},
		{`meta.created lt "2000-01-01T00:00:00Z"`, nil},
		{`nickName eq null`, []string{"bob", "carol", "dave"}},
		{`groups.display eq "PILOTS"`, []string{"alice", "carol"}},
		{`groups[display sw "build" and type eq "direct"]`, []string{"bob"}},
		{`idcsCreatedBy.value eq "` + clientID + `" and meta.resourceType eq "user"`, []string{"alice", "bob", "carol", "dave"}},
		{`ocid eq "` + aliceSnap.OCID + `"`, []string{"alice"}},
		{`id eq "` + strings.ToUpper(aliceSnap.ID) + `"`, []string{"alice"}},
		{`id eq "` + aliceSnap.ID + `"`, []string{"alice"}},
		{`domainOcid pr and deleteInProgress eq false`, []string{"alice", "bob", "carol", "dave"}},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			resp, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{Filter: &tt.filter,
				SortBy: common.String("userName"), Attributes: common.String("userName")})
			if err != nil {
				t.Fatalf("ListUsers: %v", err)
			}
			var got []string
			for _, u := range resp.Resources {
				got = append(got, *u.UserName)
			}
			if !slices.Equal(got, tt.want) || *resp.TotalResults != len(tt.want) {
				t.Fatalf("got %v (total %d), want %v", got, *resp.TotalResults, tt.want)
			}
		})
	}

	groupTests := []struct {
		filter string
		want   []string
	}{
		{`members[value eq "` + pilots.ID + `"]`, nil},
		{`displayName eq "PILOTS"`, []string{"pilots"}},
		{`members.display co "builder"`, []string{"builders"}},
		{`members pr`, []string{"builders", "pilots"}},
	}
	alice, _ := d.UserByName("alice")
	groupTests = append(groupTests, struct {
		filter string
		want   []string
	}{`members[value eq "` + alice.ID + `"]`, []string{"pilots"}})
	for _, tt := range groupTests {
		t.Run("groups "+tt.filter, func(t *testing.T) {
			resp, err := c.ListGroups(ctx, identitydomains.ListGroupsRequest{Filter: &tt.filter, SortBy: common.String("displayName")})
			if err != nil {
				t.Fatalf("ListGroups: %v", err)
			}
			var got []string
			for _, g := range resp.Resources {
				got = append(got, *g.DisplayName)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	for _, bad := range []string{`userName eq`, `userName xx "a"`, `(userName eq "a"`, `active gt true`, `active lt 3`, `emails[type eq "work"`} {
		t.Run("invalid "+bad, func(t *testing.T) {
			_, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{Filter: &bad})
			if status(err) != http.StatusBadRequest {
				t.Fatalf("err = %v, want 400", err)
			}
			body, _ := c.rec.last()
			e := parseSCIMError(t, body)
			if e.Status != "400" || e.ScimType != "invalidFilter" || !strings.Contains(e.Detail, "invalid filter") {
				t.Fatalf("error body = %+v", e)
			}
		})
	}
}

func TestSDKPagingPastMaxCount(t *testing.T) {
	d := start(t, baseConfig())
	if err := d.Generate(identitydomain.GenerateConfig{Users: 2500, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	c := newSDK(t, d)
	ctx := context.Background()
	seen := map[string]bool{}
	var pages []int
	for start := 1; ; {
		resp, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{StartIndex: common.Int(start), Count: common.Int(1000),
			Attributes: common.String("userName")})
		if err != nil {
			t.Fatalf("ListUsers(startIndex=%d): %v", start, err)
		}
		if *resp.TotalResults != 2500 || *resp.StartIndex != start {
			t.Fatalf("totalResults %d startIndex %d", *resp.TotalResults, *resp.StartIndex)
		}
		pages = append(pages, len(resp.Resources))
		for _, u := range resp.Resources {
			seen[*u.Id] = true
		}
		start += len(resp.Resources)
		if len(resp.Resources) == 0 || start > *resp.TotalResults {
			break
		}
	}
	if !slices.Equal(pages, []int{1000, 1000, 500}) || len(seen) != 2500 {
		t.Fatalf("pages %v, %d distinct users", pages, len(seen))
	}
	big, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{Count: common.Int(5000)})
	if err != nil || len(big.Resources) != 1000 || *big.ItemsPerPage != 1000 {
		t.Fatalf("count=5000 gave %d resources (itemsPerPage %v), %v", len(big.Resources), big.ItemsPerPage, err)
	}
	def, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{})
	if err != nil || len(def.Resources) != 50 {
		t.Fatalf("default count gave %d resources, %v", len(def.Resources), err)
	}
	neg, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{Count: common.Int(-1), StartIndex: common.Int(-5)})
	if err != nil || len(neg.Resources) != 50 || *neg.StartIndex != 1 {
		t.Fatalf("count=-1 startIndex=-5 gave %d resources from %v, %v", len(neg.Resources), neg.StartIndex, err)
	}
	zero, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{Count: common.Int(0)})
	if err != nil || len(zero.Resources) != 0 || *zero.TotalResults != 2500 {
		t.Fatalf("count=0 gave %d resources, total %v, %v", len(zero.Resources), zero.TotalResults, err)
	}
	desc, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{SortBy: common.String("userName"),
		SortOrder: identitydomains.ListUsersSortOrderDescending, Count: common.Int(2)})
	if err != nil || *desc.Resources[0].UserName != "user002500" || *desc.Resources[1].UserName != "user002499" {
		t.Fatalf("descending sort gave %v, %v", desc.Resources, err)
	}
}

func TestSDKMemberPaging(t *testing.T) {
	d := start(t, baseConfig())
	const n = 12000
	if err := d.Generate(identitydomain.GenerateConfig{Users: n, Groups: 1, Memberships: n, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	gid := d.Groups()[0].ID
	c := newSDK(t, d)
	ctx := context.Background()

	if _, err := c.GetGroup(ctx, identitydomains.GetGroupRequest{GroupId: &gid}); err != nil {
		t.Fatalf("GetGroup without members: %v", err)
	}
	_, err := c.GetGroup(ctx, identitydomains.GetGroupRequest{GroupId: &gid, Attributes: common.String("members")})
	if status(err) != http.StatusBadRequest {
		t.Fatalf("GetGroup(attributes=members) with %d members: %v, want 400", n, err)
	}
	body, _ := c.rec.last()
	if e := parseSCIMError(t, body); e.ScimType != "tooMany" || e.Status != "400" {
		t.Errorf("error body = %+v", e)
	}
	if _, err := c.ListGroups(ctx, identitydomains.ListGroupsRequest{Attributes: common.String("members")}); status(err) != http.StatusBadRequest {
		t.Errorf("ListGroups(attributes=members): %v, want 400", err)
	}

	seen := map[string]bool{}
	const page = 5000
	for start := 1; start <= n; start += page {
		attrs := "members[startIndex=" + itoa(start) + "&count=" + itoa(page) + "]"
		resp, err := c.GetGroup(ctx, identitydomains.GetGroupRequest{GroupId: &gid, Attributes: &attrs})
		if err != nil {
			t.Fatalf("GetGroup(%s): %v", attrs, err)
		}
		want := min(page, n-start+1)
		if len(resp.Members) != want {
			t.Fatalf("page at %d: %d members, want %d", start, len(resp.Members), want)
		}
		for _, m := range resp.Members {
			seen[*m.Value] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("paged %d distinct members, want %d", len(seen), n)
	}
	resp, err := c.GetGroup(ctx, identitydomains.GetGroupRequest{GroupId: &gid, Attributes: common.String("members[startIndex=11999&count=10]")})
	if err != nil || len(resp.Members) != 2 {
		t.Fatalf("last page: %d members, %v", len(resp.Members), err)
	}
	if _, last := c.rec.last(); !strings.Contains(last.Request.URL.RawQuery, "%26count") {
		t.Errorf("the SDK did not encode & as %%26: %s", last.Request.URL.RawQuery)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSDKIfMatch(t *testing.T) {
	d := start(t, baseConfig())
	c := newSDK(t, d)
	ctx := context.Background()
	tok := getToken(t, d)
	id := mustCreate(t, d, tok, "Users", userBody("etag@example.com"))
	gid := mustCreate(t, d, tok, "Groups", groupBody("etags"))

	got, err := c.GetUser(ctx, identitydomains.GetUserRequest{UserId: &id})
	if err != nil {
		t.Fatal(err)
	}
	v1 := *got.Meta.Version
	patch := func(ifMatch string, title string) (identitydomains.PatchUserResponse, error) {
		return c.PatchUser(ctx, identitydomains.PatchUserRequest{UserId: &id, IfMatch: &ifMatch, PatchOp: identitydomains.PatchOp{
			Schemas:    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			Operations: []identitydomains.Operations{{Op: identitydomains.OperationsOpReplace, Path: common.String("title"), Value: anyValue(title)}},
		}})
	}
	p1, err := patch(v1, "one")
	if err != nil {
		t.Fatalf("PATCH with current version: %v", err)
	}
	if _, err := patch(v1, "two"); status(err) != http.StatusPreconditionFailed {
		t.Fatalf("PATCH with stale version: %v, want 412", err)
	}
	body, _ := c.rec.last()
	if e := parseSCIMError(t, body); e.Status != "412" {
		t.Errorf("412 body = %+v", e)
	}
	if _, err := patch(*p1.Etag, "three"); err != nil {
		t.Fatalf("PATCH with the ETag header value: %v", err)
	}
	if _, err := patch("*", "four"); err != nil {
		t.Fatalf("PATCH with If-Match *: %v", err)
	}
	if _, err := c.PutUser(ctx, identitydomains.PutUserRequest{UserId: &id, IfMatch: &v1, User: identitydomains.User{
		Schemas: []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, UserName: common.String("etag@example.com")}}); status(err) != 412 {
		t.Errorf("PUT with stale version: %v, want 412", err)
	}
	if _, err := c.DeleteUser(ctx, identitydomains.DeleteUserRequest{UserId: &id, IfMatch: &v1}); status(err) != 412 {
		t.Errorf("DELETE with stale version: %v, want 412", err)
	}
	if _, err := c.DeleteGroup(ctx, identitydomains.DeleteGroupRequest{GroupId: &gid, IfMatch: common.String("nope")}); status(err) != 412 {
		t.Errorf("DELETE group with stale version: %v, want 412", err)
	}
	cur, _ := d.User(id)
	if _, err := c.DeleteUser(ctx, identitydomains.DeleteUserRequest{UserId: &id, IfMatch: common.String(`"` + cur.Version + `"`)}); err != nil {
		t.Errorf("DELETE with current version: %v", err)
	}
}

func TestSDKConflicts(t *testing.T) {
	d := start(t, baseConfig())
	c := newSDK(t, d)
	ctx := context.Background()
	mk := func(name string) error {
		_, err := c.CreateUser(ctx, identitydomains.CreateUserRequest{User: identitydomains.User{
			Schemas: []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, UserName: &name}})
		return err
	}
	if err := mk("dup@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := mk("DUP@Example.com"); status(err) != http.StatusConflict {
		t.Fatalf("duplicate userName (other case): %v, want 409", err)
	}
	body, resp := c.rec.last()
	e := parseSCIMError(t, body)
	if e.Status != "409" || e.ScimType != "uniqueness" || e.Ext.MessageID == "" ||
		!slices.Contains(e.Schemas, "urn:ietf:params:scim:api:messages:2.0:Error") ||
		e.Detail != "A user with userName DUP@Example.com already exists." {
		t.Errorf("409 body = %s", body)
	}
	if resp.Header.Get("X-ORACLE-DMS-ECID") == "" || resp.Header.Get("X-ORACLE-DMS-RID") == "" {
		t.Errorf("error response lacks DMS headers: %v", resp.Header)
	}
	mkg := func(name string) error {
		_, err := c.CreateGroup(ctx, identitydomains.CreateGroupRequest{Group: identitydomains.Group{
			Schemas: []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, DisplayName: &name}})
		return err
	}
	if err := mkg("Ops"); err != nil {
		t.Fatal(err)
	}
	if err := mkg("ops"); status(err) != http.StatusConflict {
		t.Fatalf("duplicate displayName: %v, want 409", err)
	}
	if err := mkg("Ops2"); err != nil {
		t.Fatal(err)
	}
	g2, _ := d.GroupByName("ops2")
	_, err := c.PatchGroup(ctx, identitydomains.PatchGroupRequest{GroupId: &g2.ID, PatchOp: identitydomains.PatchOp{
		Schemas:    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		Operations: []identitydomains.Operations{{Op: identitydomains.OperationsOpReplace, Path: common.String("displayName"), Value: anyValue("OPS")}},
	}})
	if status(err) != http.StatusConflict {
		t.Fatalf("rename onto an existing displayName: %v, want 409", err)
	}
	if body, _ := c.rec.last(); parseSCIMError(t, body).Detail != "A group with displayName OPS already exists." {
		t.Errorf("409 body = %s", body)
	}
}

func TestSDKUserCapabilitiesChanger(t *testing.T) {
	d := start(t, baseConfig())
	c := newSDK(t, d)
	ctx := context.Background()
	id := mustCreate(t, d, getToken(t, d), "Users", userBody("caps@example.com"))
	var events []identitydomain.Event
	d.OnEvent(func(b []byte) { events = append(events, decode(t, b)) })

	resp, err := c.PutUserCapabilitiesChanger(ctx, identitydomains.PutUserCapabilitiesChangerRequest{
		UserCapabilitiesChangerId: &id,
		UserCapabilitiesChanger: identitydomains.UserCapabilitiesChanger{
			Schemas:               []string{"urn:ietf:params:scim:schemas:oracle:idcs:UserCapabilitiesChanger"},
			CanUseApiKeys:         common.Bool(true),
			CanUseAuthTokens:      common.Bool(false),
			CanUseSmtpCredentials: common.Bool(false),
			UrnIetfParamsScimSchemasOracleIdcsExtensionSelfChangeUser: &identitydomains.ExtensionSelfChangeUser{AllowSelfChange: common.Bool(true)},
		},
	})
	if err != nil {
		t.Fatalf("PutUserCapabilitiesChanger: %v", err)
	}
	if *resp.Id != id || *resp.CanUseAuthTokens || !*resp.CanUseApiKeys || !*resp.CanUseConsolePassword || resp.Etag == nil ||
		!*resp.UrnIetfParamsScimSchemasOracleIdcsExtensionSelfChangeUser.AllowSelfChange {
		t.Errorf("changer response = %+v", resp.UserCapabilitiesChanger)
	}
	u, err := c.GetUser(ctx, identitydomains.GetUserRequest{UserId: &id})
	if err != nil {
		t.Fatal(err)
	}
	caps := u.UrnIetfParamsScimSchemasOracleIdcsExtensionCapabilitiesUser
	if caps == nil || *caps.CanUseAuthTokens || *caps.CanUseSmtpCredentials || !*caps.CanUseApiKeys || !*caps.CanUseDbCredentials || !*caps.CanUseConsole {
		t.Fatalf("capabilities read back = %+v", caps)
	}
	if sc := u.UrnIetfParamsScimSchemasOracleIdcsExtensionSelfChangeUser; sc == nil || !*sc.AllowSelfChange {
		t.Errorf("selfChange read back = %+v", sc)
	}
	if len(events) != 1 || events[0].EventType != identitydomain.EventUpdateUserCapabilities {
		t.Fatalf("events = %+v", events)
	}
	added := events[0].Data.AdditionalDetails.AdminValuesAdded.(map[string]any)
	if added["canUseAuthTokens"] != false || added["canUseSmtpCredentials"] != false || added["canUseApiKeys"] != nil {
		t.Errorf("adminValuesAdded = %v", added)
	}
	// The docs sample body, with selfChange flattened, works too.
	r := call(t, http.MethodPut, d.URL()+"/admin/v1/UserCapabilitiesChanger/"+id, getToken(t, d), map[string]any{
		"canUseApiKeys": false, "canUseAuthTokens": false, "canUseConsolePassword": true, "canUseCustomerSecretKeys": true,
		"canUseOAuth2ClientCredentials": true, "canUseSmtpCredentials": true, "canUseDbCredentials": true,
		"urn:ietf:params:scim:schemas:oracle:idcs:extension:selfChange:User:allowSelfChange": false,
		"schemas": []string{"urn:ietf:params:scim:schemas:oracle:idcs:UserCapabilitiesChanger"},
	})
	if r.status != 200 || r.json["canUseApiKeys"] != false {
		t.Fatalf("docs sample PUT: %d %s", r.status, r.body)
	}
	if snap, _ := d.User(id); snap.Capabilities["canUseApiKeys"] || !snap.Capabilities["canUseSmtpCredentials"] {
		t.Errorf("capabilities = %v", snap.Capabilities)
	}
	if _, err := c.PutUserCapabilitiesChanger(ctx, identitydomains.PutUserCapabilitiesChangerRequest{
		UserCapabilitiesChangerId: common.String("nobody"),
		UserCapabilitiesChanger: identitydomains.UserCapabilitiesChanger{
			Schemas: []string{"urn:ietf:params:scim:schemas:oracle:idcs:UserCapabilitiesChanger"}, CanUseApiKeys: common.Bool(true)},
	}); status(err) != 404 {
		t.Errorf("changer for unknown user: %v, want 404", err)
	}
}

func TestSDKUnauthorized(t *testing.T) {
	clock := identitydomain.NewManualClock(t0)
	cfg := baseConfig()
	cfg.TokenTTL = 5 * time.Minute
	d := start(t, cfg, identitydomain.WithClock(clock))
	c := newSDK(t, d)
	ctx := context.Background()
	list := func() error {
		_, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{})
		return err
	}
	if err := list(); err != nil {
		t.Fatalf("with a fresh token: %v", err)
	}
	for name, tok := range map[string]string{"missing": "", "unknown": "not-a-token"} {
		c.setToken(tok)
		if err := list(); status(err) != http.StatusUnauthorized {
			t.Errorf("%s token: %v, want 401", name, err)
		}
		body, _ := c.rec.last()
		if e := parseSCIMError(t, body); e.Status != "401" {
			t.Errorf("%s token: body %s", name, body)
		}
	}
	c.setToken(getToken(t, d))
	clock.Advance(5*time.Minute - time.Second)
	if err := list(); err != nil {
		t.Fatalf("token just before expiry: %v", err)
	}
	clock.Advance(time.Second)
	if err := list(); status(err) != http.StatusUnauthorized {
		t.Fatalf("expired token: %v, want 401", err)
	}
	body, _ := c.rec.last()
	if e := parseSCIMError(t, body); !strings.Contains(e.Detail, "expired") {
		t.Errorf("expired token body %s", body)
	}
	c.setToken(getToken(t, d))
	if err := list(); err != nil {
		t.Fatalf("new token after expiry: %v", err)
	}
}

func TestSDKRateLimit(t *testing.T) {
	clock := identitydomain.NewManualClock(t0.Truncate(time.Minute)) // windows are aligned to the minute
	cfg := baseConfig()
	cfg.Tier = identitydomain.TierFree // 20/s and 150/min for Others
	d := start(t, cfg, identitydomain.WithClock(clock))
	c := newSDK(t, d) // one token request: the token bucket is separate
	ctx := context.Background()
	get := func() error {
		_, err := c.ListUsers(ctx, identitydomains.ListUsersRequest{Count: common.Int(1)})
		return err
	}
	sent := 0
	burst := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if err := get(); err != nil {
				t.Fatalf("request %d: %v", sent+1, err)
			}
			sent++
		}
	}
	burst(20)
	if err := get(); status(err) != http.StatusTooManyRequests {
		t.Fatalf("21st request in a second: %v, want 429", err)
	}
	body, resp := c.rec.last()
	if e := parseSCIMError(t, body); e.Status != "429" || resp.Header.Get("Retry-After") != "" {
		t.Errorf("429 body %s, Retry-After %q", body, resp.Header.Get("Retry-After"))
	}
	for sent < 150 {
		clock.Advance(time.Second)
		burst(min(20, 150-sent))
	}
	clock.Advance(time.Second)
	if err := get(); status(err) != http.StatusTooManyRequests {
		t.Fatalf("151st request in a minute: %v, want 429", err)
	}
	clock.Advance(time.Minute)
	if err := get(); err != nil {
		t.Fatalf("after the minute: %v", err)
	}
	if st := d.Stats(); st.RateLimited != 2 {
		t.Errorf("RateLimited = %d, want 2", st.RateLimited)
	}

	// Token Mgmt has its own limit: 10/s on the free tier.
	codes := map[int]int{}
	for i := 0; i < 12; i++ {
		r := call(t, http.MethodPost, d.URL()+"/oauth2/v1/token", "", "grant_type=client_credentials&scope=urn:opc:idm:__myscopes__&client_id="+clientID+"&client_secret="+clientSecret,
			"Content-Type", "application/x-www-form-urlencoded")
		codes[r.status]++
	}
	if codes[200] != 10 || codes[429] != 2 {
		t.Errorf("token endpoint statuses = %v, want 10x200 2x429", codes)
	}
}
