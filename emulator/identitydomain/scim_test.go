package identitydomain_test

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/testutil"
)

// These tests speak raw HTTP, as curl or a hand-written SCIM client would.

// keys is m's keys, sorted.
func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func TestHeadersAndErrorShape(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		messageID                 string
	}{
		{"no token", "GET", "/admin/v1/Users", "", nil, 401, "error.common.common.unauthorized"},
		{"unknown user", "GET", "/admin/v1/Users/nope", tok, nil, 404, "error.common.common.resourceNotFound"},
		{"unknown path", "GET", "/admin/v1/Widgets", tok, nil, 404, "error.common.common.resourceNotFound"},
		{"not admin", "GET", "/nothing", tok, nil, 404, "error.common.common.resourceNotFound"},
		{"method", "DELETE", "/admin/v1/Users", tok, nil, 405, "error.common.common.methodNotAllowed"},
		{"bad json", "POST", "/admin/v1/Users", tok, "{", 400, "error.common.common.invalidSyntax"},
		{"empty body", "POST", "/admin/v1/Users", tok, "", 400, "error.common.common.invalidSyntax"},
		{"no schemas", "POST", "/admin/v1/Users", tok, map[string]any{"userName": "x"}, 400, "error.common.validation.missingReqAttributes"},
		{"wrong schemas", "POST", "/admin/v1/Users", tok, map[string]any{"userName": "x", "schemas": []string{"urn:x:y"}}, 400, "error.common.validation.invalidValue"},
		{"no userName", "POST", "/admin/v1/Users", tok, map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}}, 400, "error.common.validation.missingReqAttributes"},
		{"bad type", "POST", "/admin/v1/Users", tok, userBody("t", "active", "yes"), 400, "error.common.validation.invalidValue"},
		{"bad multi", "POST", "/admin/v1/Users", tok, userBody("t", "emails", "x@y"), 400, "error.common.validation.invalidValue"},
		{"bad count", "GET", "/admin/v1/Users?count=ten", tok, nil, 400, "error.common.validation.invalidValue"},
		{"bad sortOrder", "GET", "/admin/v1/Users?sortOrder=up", tok, nil, 400, "error.common.validation.invalidValue"},
		{"bad attributeSets", "GET", "/admin/v1/Users?attributeSets=some", tok, nil, 400, "error.common.validation.invalidValue"},
		{"bad filter", "GET", "/admin/v1/Users?filter=" + url.QueryEscape(`userName eq`), tok, nil, 400, "error.common.common.invalidFilter"},
		{"search schemas", "POST", "/admin/v1/Users/.search", tok, map[string]any{"filter": `userName pr`}, 400, "error.common.validation.invalidValue"},
		{"search method", "GET", "/admin/v1/Users/.search", tok, nil, 405, "error.common.common.methodNotAllowed"},
		{"capabilities method", "GET", "/admin/v1/UserCapabilitiesChanger/x", tok, nil, 405, "error.common.common.methodNotAllowed"},
		{"bad member", "POST", "/admin/v1/Groups", tok, groupBody("g", "nobody"), 400, "error.common.validation.invalidValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, tt.method, d.URL()+tt.path, tt.token, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if r.header.Get("X-ORACLE-DMS-ECID") == "" || r.header.Get("X-ORACLE-DMS-RID") == "" {
				t.Errorf("missing DMS headers: %v", r.header)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
				t.Errorf("Content-Type %q", ct)
			}
			e := parseSCIMError(t, r.body)
			if e.Status != itoa(tt.status) || e.Detail == "" || e.Ext.MessageID != tt.messageID ||
				!slices.Equal(e.Schemas, []string{"urn:ietf:params:scim:api:messages:2.0:Error", "urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error"}) {
				t.Errorf("error body %s", r.body)
			}
			if _, isString := r.json["status"].(string); !isString {
				t.Errorf("status is not a string: %s", r.body)
			}
		})
	}
	ok := call(t, "GET", d.URL()+"/admin/v1/Users", tok, nil)
	if ok.header.Get("X-ORACLE-DMS-ECID") == "" || ok.header.Get("X-ORACLE-DMS-ECID") == call(t, "GET", d.URL()+"/admin/v1/Users", tok, nil).header.Get("X-ORACLE-DMS-ECID") {
		t.Error("ECID missing or not unique per request")
	}
}

// TestGetAnswersETagOfTheVersion: GET of a user or group carries the ETag
// W/"<meta.version>" (write.go) and changes with each write; an unknown id
// is 404.
func TestGetAnswersETagOfTheVersion(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	uid := mustCreate(t, d, tok, "Users", userBody("etag@example.com"))
	gid := mustCreate(t, d, tok, "Groups", groupBody("etag-group", uid))
	for _, path := range []string{"/admin/v1/Users/" + uid, "/admin/v1/Groups/" + gid} {
		r := call(t, "GET", d.URL()+path, tok, nil)
		meta, _ := r.json["meta"].(map[string]any)
		version, _ := meta["version"].(string)
		if r.status != 200 || version == "" || r.header.Get("ETag") != `W/"`+version+`"` {
			t.Fatalf("GET %s: %d ETag %q meta %v", path, r.status, r.header.Get("ETag"), meta)
		}
		patch := call(t, "PATCH", d.URL()+path, tok, patchBody(op("replace", "externalId", "x-"+version)))
		if patch.status != 200 {
			t.Fatalf("PATCH %s: %d %s", path, patch.status, patch.body)
		}
		again := call(t, "GET", d.URL()+path, tok, nil)
		if etag := again.header.Get("ETag"); etag == r.header.Get("ETag") || etag != patch.header.Get("ETag") {
			t.Errorf("GET %s after a write: ETag %q, before %q, PATCH answered %q", path, etag, r.header.Get("ETag"), patch.header.Get("ETag"))
		}
	}
	if r := call(t, "GET", d.URL()+"/admin/v1/Groups/nope", tok, nil); r.status != 404 {
		t.Errorf("unknown group: %d %s", r.status, r.body)
	}
}

// TestFilterOnMembershipAttributes: a membership's OCID and date added are
// filterable from both sides, a group's members and a user's groups.
func TestFilterOnMembershipAttributes(t *testing.T) {
	clock := identitydomain.NewManualClock(t0)
	d := start(t, baseConfig(), identitydomain.WithClock(clock))
	tok := getToken(t, d)
	uid := mustCreate(t, d, tok, "Users", userBody("member@example.com"))
	mustCreate(t, d, tok, "Users", userBody("other@example.com"))
	gid := mustCreate(t, d, tok, "Groups", groupBody("with-member", uid))
	mustCreate(t, d, tok, "Groups", groupBody("without-member"))
	ms, _ := d.Members(gid)
	if len(ms) != 1 || ms[0].MembershipOCID == "" {
		t.Fatalf("members %+v", ms)
	}
	ids := func(path, filter string) []string {
		t.Helper()
		r := call(t, "GET", d.URL()+path+"?filter="+url.QueryEscape(filter), tok, nil)
		if r.status != 200 {
			t.Fatalf("%s %s: %d %s", path, filter, r.status, r.body)
		}
		var out []string
		res, _ := r.json["Resources"].([]any)
		for _, x := range res {
			out = append(out, x.(map[string]any)["id"].(string))
		}
		return out
	}
	after := t0.Add(-time.Minute).Format(time.RFC3339)
	for _, tc := range []struct {
		path, filter, want string
	}{
		{"/admin/v1/Groups", `members[membershipOcid eq "` + ms[0].MembershipOCID + `"]`, gid},
		{"/admin/v1/Users", `groups[membershipOcid eq "` + ms[0].MembershipOCID + `"]`, uid},
		{"/admin/v1/Groups", `members[dateAdded gt "` + after + `"]`, gid},
		{"/admin/v1/Users", `groups[dateAdded gt "` + after + `"]`, uid},
	} {
		if got := ids(tc.path, tc.filter); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%s %s: %v, want [%s]", tc.path, tc.filter, got, tc.want)
		}
	}
}

func TestAttributeSelection(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	uid := mustCreate(t, d, tok, "Users", userBody("sel@example.com", "displayName", "Sel", "password", "Secret123!",
		"urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User", map[string]any{"status": "verified"},
		"x-custom", "kept"))
	gid := mustCreate(t, d, tok, "Groups", groupBody("sels", uid))
	get := func(path string) map[string]any {
		t.Helper()
		r := call(t, "GET", d.URL()+path, tok, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		return r.json
	}
	userURN := "urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User"
	capURN := "urn:ietf:params:scim:schemas:oracle:idcs:extension:capabilities:User"
	tests := []struct {
		query string
		want  []string // top-level keys
	}{
		{"attributes=userName", []string{"id", "userName"}},
		{"attributes=USERNAME,displayName", []string{"displayName", "id", "userName"}},
		{"attributes=name.givenName", []string{"id", "name", "userName"}},
		{"attributes=groups", []string{"groups", "id", "userName"}},
		{"attributes=" + url.QueryEscape(capURN), []string{"id", userURN[:0] + capURN, "userName"}},
		{"attributes=" + url.QueryEscape(userURN+":isFederatedUser"), []string{"id", "userName", userURN}},
		{"attributeSets=always", []string{"id", "userName"}},
		{"attributeSets=never", []string{"id", "userName"}},
		{"attributeSets=always&attributes=active", []string{"active", "id", "userName"}},
		{"attributeSets=request", []string{"groups", "id", "userName", userURN}},
		{"excludedAttributes=meta,emails,name", []string{"active", "compartmentOcid", "displayName", "domainOcid", "id", "idcsCreatedBy",
			"idcsLastModifiedBy", "ocid", "schemas", "tenancyOcid", "userName", "x-custom", capURN, userURN, identitydomain.SchemaUserState}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got := keys(get("/admin/v1/Users/" + uid + "?" + tt.query))
			want := slices.Clone(tt.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("keys %v, want %v", got, want)
			}
		})
	}
	name := get("/admin/v1/Users/" + uid + "?attributes=name.givenName")["name"].(map[string]any)
	if keys(name)[0] != "givenName" || len(name) != 1 {
		t.Errorf("name.givenName gave %v", name)
	}
	ext := get("/admin/v1/Users/" + uid + "?attributes=" + url.QueryEscape(userURN+":isFederatedUser"))[userURN].(map[string]any)
	if len(ext) != 1 || ext["isFederatedUser"] != false {
		t.Errorf("extension attribute gave %v", ext)
	}
	all := get("/admin/v1/Users/" + uid + "?attributeSets=all")
	if _, ok := all["password"]; ok {
		t.Error("password returned")
	}
	if all[userURN].(map[string]any)["status"] != "verified" || all["groups"] == nil || all["x-custom"] != "kept" {
		t.Errorf("attributeSets=all gave %v", all)
	}
	def := get("/admin/v1/Users/" + uid)
	if _, ok := def[userURN].(map[string]any)["status"]; ok {
		t.Errorf("returned=request status came back by default")
	}
	if !slices.Contains(def["schemas"].([]any), any(capURN)) {
		t.Errorf("schemas %v lack the capabilities extension", def["schemas"])
	}
	groups := get("/admin/v1/Users/" + uid + "?attributes=groups")["groups"].([]any)
	g0 := groups[0].(map[string]any)
	if g0["value"] != gid || g0["display"] != "sels" || g0["$ref"] != d.URL()+"/admin/v1/Groups/"+gid || g0["type"] != nil {
		t.Errorf("groups[0] = %v (type is returned=request)", g0)
	}
	gm := get("/admin/v1/Groups/" + gid + "?attributes=members.value")["members"].([]any)[0].(map[string]any)
	if !slices.Equal(keys(gm), []string{"ocid", "value"}) {
		t.Errorf("members.value gave %v (value and ocid are returned=always)", keys(gm))
	}
	// members[...] paging with the & URL-encoded, as Oracle documents.
	r := call(t, "GET", d.URL()+"/admin/v1/Groups/"+gid+"?attributes=members[startIndex=1%26count=10]", tok, nil)
	if r.status != 200 || len(r.json["members"].([]any)) != 1 {
		t.Errorf("member paging: %d %s", r.status, r.body)
	}
	r = call(t, "GET", d.URL()+"/admin/v1/Groups/"+gid+"?attributes=members[startIndex=1%26size=10]", tok, nil)
	if r.status != 400 {
		t.Errorf("bad member paging: %d %s", r.status, r.body)
	}
	r = call(t, "GET", d.URL()+"/admin/v1/Groups/"+gid+"?attributes=members[startIndex=2%26count=10]", tok, nil)
	if r.status != 200 || r.json["members"] != nil {
		t.Errorf("member page past the end: %d %s", r.status, r.body)
	}
}

func TestListResponseShape(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	for _, n := range []string{"c", "a", "b"} {
		mustCreate(t, d, tok, "Users", userBody(n))
	}
	r := call(t, "GET", d.URL()+"/admin/v1/Users?filter="+url.QueryEscape(`userName eq "b"`)+"&count=10", tok, nil)
	if r.status != 200 || !slices.Equal(keys(r.json), []string{"Resources", "itemsPerPage", "schemas", "startIndex", "totalResults"}) ||
		r.json["totalResults"] != 1.0 || r.json["itemsPerPage"] != 10.0 || r.json["startIndex"] != 1.0 ||
		r.json["schemas"].([]any)[0] != "urn:ietf:params:scim:api:messages:2.0:ListResponse" {
		t.Fatalf("list response %s", r.body)
	}
	none := call(t, "GET", d.URL()+"/admin/v1/Users?filter="+url.QueryEscape(`userName eq "zz"`), tok, nil)
	if res, ok := none.json["Resources"].([]any); !ok || len(res) != 0 || none.json["totalResults"] != 0.0 {
		t.Errorf("empty list %s", none.body)
	}
	order := func(q string) []string {
		r := call(t, "GET", d.URL()+"/admin/v1/Users?"+q, tok, nil)
		var out []string
		for _, x := range r.json["Resources"].([]any) {
			out = append(out, x.(map[string]any)["userName"].(string))
		}
		return out
	}
	if got := order(""); !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Errorf("default order %v, want creation order", got)
	}
	if got := order("sortBy=userName"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("sortBy=userName %v", got)
	}
	if got := order("sortBy=USERNAME&sortOrder=Descending&startIndex=2&count=1"); !slices.Equal(got, []string{"b"}) {
		t.Errorf("descending page %v", got)
	}
	if got := order("sortBy=title"); !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Errorf("sort by an absent attribute %v, want creation order", got)
	}
	s := call(t, "POST", d.URL()+"/admin/v1/Users/.search", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": `userName ne "a"`,
		"attributes": []string{"userName"}, "sortBy": "userName", "startIndex": 0, "count": 1})
	if s.status != 200 || s.json["totalResults"] != 2.0 || len(s.json["Resources"].([]any)) != 1 ||
		s.json["Resources"].([]any)[0].(map[string]any)["userName"] != "b" {
		t.Errorf(".search %d %s", s.status, s.body)
	}
}

func TestPatchSemantics(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	uid := mustCreate(t, d, tok, "Users", userBody("p@example.com"))
	u2 := mustCreate(t, d, tok, "Users", userBody("q@example.com", "displayName", "q@example.com"))
	gid := mustCreate(t, d, tok, "Groups", groupBody("patchers", uid))
	patch := func(kind, id string, ops ...map[string]any) response {
		t.Helper()
		return call(t, http.MethodPatch, d.URL()+"/admin/v1/"+kind+"/"+id, tok, patchBody(ops...))
	}
	tests := []struct {
		name     string
		kind, id string
		ops      []map[string]any
		status   int
		scimType string
		check    func(t *testing.T, r response)
	}{
		{name: "lower-case op", kind: "Users", id: uid, ops: []map[string]any{op("replace", "title", "Boss")}, status: 200,
			check: func(t *testing.T, r response) {
				if r.json["title"] != "Boss" {
					t.Errorf("title %v", r.json["title"])
				}
			}},
		{name: "mixed-case op", kind: "Users", id: uid, ops: []map[string]any{op("Add", "nickName", "P")}, status: 200},
		{name: "unknown op", kind: "Users", id: uid, ops: []map[string]any{op("move", "title", "x")}, status: 400, scimType: "invalidSyntax"},
		{name: "no path", kind: "Users", id: uid, ops: []map[string]any{op("replace", "", map[string]any{"displayName": "PP",
			"urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User": map[string]any{"isFederatedUser": true}})}, status: 200,
			check: func(t *testing.T, r response) {
				ext := r.json["urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User"].(map[string]any)
				if r.json["displayName"] != "PP" || ext["isFederatedUser"] != true {
					t.Errorf("got %s", r.body)
				}
			}},
		{name: "remove without path", kind: "Users", id: uid, ops: []map[string]any{op("remove", "", nil)}, status: 400, scimType: "noTarget"},
		{name: "read-only", kind: "Users", id: uid, ops: []map[string]any{op("replace", "id", "x")}, status: 400, scimType: "mutability"},
		{name: "read-only groups", kind: "Users", id: uid, ops: []map[string]any{op("add", "groups", []any{map[string]any{"value": gid}})}, status: 400, scimType: "mutability"},
		{name: "bad path", kind: "Users", id: uid, ops: []map[string]any{op("replace", "emails[type eq", "x")}, status: 400, scimType: "invalidPath"},
		{name: "filter no match", kind: "Users", id: uid, ops: []map[string]any{op("replace", `emails[type eq "home"].value`, "x")}, status: 400, scimType: "noTarget"},
		{name: "filter replaces whole values", kind: "Users", id: u2, ops: []map[string]any{op("replace", `emails[type eq "work"]`,
			map[string]any{"value": "q2@example.com", "type": "work", "primary": true})}, status: 200,
			check: func(t *testing.T, r response) {
				emails, _ := r.json["emails"].([]any)
				if len(emails) != 1 || emails[0].(map[string]any)["value"] != "q2@example.com" {
					t.Errorf("emails %v, want the work email replaced by q2@example.com", r.json["emails"])
				}
			}},
		{name: "remove userName", kind: "Users", id: uid, ops: []map[string]any{op("remove", "userName", nil)}, status: 400},
		{name: "atomic", kind: "Users", id: uid, ops: []map[string]any{op("replace", "title", "Never"), op("replace", "id", "x")}, status: 400,
			check: func(t *testing.T, _ response) {
				if u, _ := d.User(uid); u.Attributes["title"] == "Never" {
					t.Error("a failed PATCH left a change behind")
				}
			}},
		{name: "primary moves", kind: "Users", id: uid, ops: []map[string]any{op("add", "emails", []any{map[string]any{"value": "p2@example.com", "type": "home", "primary": true}})}, status: 200,
			check: func(t *testing.T, r response) {
				es := r.json["emails"].([]any)
				if len(es) != 2 || es[0].(map[string]any)["primary"] != false || es[1].(map[string]any)["primary"] != true {
					t.Errorf("emails %v", es)
				}
			}},
		{name: "add existing email is a no-op", kind: "Users", id: uid, ops: []map[string]any{op("add", "emails", []any{map[string]any{"value": "p2@example.com", "type": "home", "primary": true}})}, status: 200,
			check: func(t *testing.T, r response) {
				if len(r.json["emails"].([]any)) != 2 {
					t.Errorf("emails %v", r.json["emails"])
				}
			}},
		{name: "remove by filter", kind: "Users", id: uid, ops: []map[string]any{op("remove", `emails[value sw "p2@"]`, nil)}, status: 200,
			check: func(t *testing.T, r response) {
				if len(r.json["emails"].([]any)) != 1 {
					t.Errorf("emails %v", r.json["emails"])
				}
			}},
		{name: "extension path", kind: "Groups", id: gid, ops: []map[string]any{op("add", "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group:description", "D")}, status: 200,
			check: func(t *testing.T, r response) {
				if r.json["urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group"].(map[string]any)["description"] != "D" {
					t.Errorf("got %s", r.body)
				}
			}},
		{name: "remove non-member", kind: "Groups", id: gid, ops: []map[string]any{op("remove", `members[value eq "`+u2+`"]`, nil)}, status: 400, scimType: "noTarget"},
		{name: "add unknown user", kind: "Groups", id: gid, ops: []map[string]any{op("add", "members", []any{map[string]any{"value": "ghost"}})}, status: 400, scimType: "invalidValue"},
		{name: "add group member", kind: "Groups", id: gid, ops: []map[string]any{op("add", "members", []any{map[string]any{"value": u2, "type": "Group"}})}, status: 400, scimType: "invalidValue"},
		{name: "members sub path", kind: "Groups", id: gid, ops: []map[string]any{op("replace", "members.display", "x")}, status: 400, scimType: "invalidPath"},
		{name: "add existing member", kind: "Groups", id: gid, ops: []map[string]any{op("add", "members", []any{map[string]any{"value": uid}})}, status: 200,
			check: func(t *testing.T, _ response) {
				if ms, _ := d.Members(gid); len(ms) != 1 {
					t.Errorf("members %v", ms)
				}
			}},
		{name: "remove with value list", kind: "Groups", id: gid, ops: []map[string]any{op("add", "members", []any{map[string]any{"value": u2}}),
			op("remove", "members", []any{map[string]any{"value": uid}})}, status: 200,
			check: func(t *testing.T, _ response) {
				if ms, _ := d.Members(gid); len(ms) != 1 || ms[0].UserID != u2 {
					t.Errorf("members %v", ms)
				}
			}},
		{name: "replace members", kind: "Groups", id: gid, ops: []map[string]any{op("replace", "members", []any{map[string]any{"value": uid}, map[string]any{"value": u2}})}, status: 200,
			check: func(t *testing.T, _ response) {
				if ms, _ := d.Members(gid); len(ms) != 2 || ms[0].UserID != u2 || ms[1].UserID != uid {
					t.Errorf("members %v (u2 kept its membership, uid re-added)", ms)
				}
			}},
		{name: "remove by member filter", kind: "Groups", id: gid, ops: []map[string]any{op("remove", `members[display co "q@"]`, nil)}, status: 200,
			check: func(t *testing.T, _ response) {
				if ms, _ := d.Members(gid); len(ms) != 1 || ms[0].UserID != uid {
					t.Errorf("members %v", ms)
				}
			}},
		{name: "remove all members", kind: "Groups", id: gid, ops: []map[string]any{op("REMOVE", "members", nil)}, status: 200,
			check: func(t *testing.T, _ response) {
				if ms, _ := d.Members(gid); len(ms) != 0 {
					t.Errorf("members %v", ms)
				}
			}},
		{name: "patch unknown", kind: "Groups", id: "nope", ops: []map[string]any{op("remove", "members", nil)}, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := patch(tt.kind, tt.id, tt.ops...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.scimType != "" {
				if e := parseSCIMError(t, r.body); e.ScimType != tt.scimType {
					t.Errorf("scimType %q, want %q: %s", e.ScimType, tt.scimType, r.body)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
	noSchemas := call(t, http.MethodPatch, d.URL()+"/admin/v1/Users/"+uid, tok, map[string]any{"Operations": []any{op("add", "title", "x")}})
	if noSchemas.status != 400 {
		t.Errorf("PATCH without schemas: %d", noSchemas.status)
	}
}

func TestPutGroupKeepsMembersWhenOmitted(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	uid := mustCreate(t, d, tok, "Users", userBody("m@example.com"))
	gid := mustCreate(t, d, tok, "Groups", groupBody("keepers", uid))
	r := call(t, http.MethodPut, d.URL()+"/admin/v1/Groups/"+gid, tok, groupBody("keepers-renamed"))
	if r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if ms, _ := d.Members(gid); len(ms) != 1 {
		t.Errorf("PUT without members dropped them: %v", ms)
	}
	if _, ok := d.GroupByName("KEEPERS-RENAMED"); !ok {
		t.Error("rename not indexed")
	}
	if _, ok := d.GroupByName("keepers"); ok {
		t.Error("old name still indexed")
	}
}

func TestRenameUser(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	uid := mustCreate(t, d, tok, "Users", userBody("old@example.com"))
	mustCreate(t, d, tok, "Users", userBody("taken@example.com"))
	r := call(t, http.MethodPatch, d.URL()+"/admin/v1/Users/"+uid, tok, patchBody(op("replace", "userName", "New@example.com")))
	if r.status != 200 || r.json["userName"] != "New@example.com" {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
	if u, ok := d.UserByName("new@EXAMPLE.com"); !ok || u.ID != uid {
		t.Error("new name not indexed")
	}
	if _, ok := d.UserByName("old@example.com"); ok {
		t.Error("old name still indexed")
	}
	mustCreate(t, d, tok, "Users", userBody("old@example.com")) // the old name is free again
	r = call(t, http.MethodPatch, d.URL()+"/admin/v1/Users/"+uid, tok, patchBody(op("replace", "userName", "TAKEN@example.com")))
	if r.status != 409 {
		t.Errorf("rename onto a taken userName: %d", r.status)
	}
	r = call(t, http.MethodPut, d.URL()+"/admin/v1/Users/"+uid, tok, userBody("new@example.com", "displayName", "Renamed"))
	if r.status != 200 || r.json["userName"] != "new@example.com" {
		t.Errorf("PUT with a case change of its own name: %d %s", r.status, r.body)
	}
}

func TestHandlerWithoutStart(t *testing.T) {
	var hits int
	var mu sync.Mutex
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := baseConfig()
	cfg.EventsWebhook.URL = hook.URL
	d, err := identitydomain.New(cfg, identitydomain.WithHTTPClient(hook.Client()))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	if d.URL() != "" {
		t.Errorf("URL before Start = %q", d.URL())
	}
	form := "grant_type=client_credentials&scope=urn:opc:idm:__myscopes__&client_id=" + clientID + "&client_secret=" + clientSecret
	tok := call(t, http.MethodPost, srv.URL+"/oauth2/v1/token", "", form, "Content-Type", "application/x-www-form-urlencoded").json["access_token"].(string)
	r := call(t, http.MethodPost, srv.URL+"/admin/v1/Users", tok, userBody("h@example.com"))
	if r.status != 201 || r.json["meta"].(map[string]any)["location"] != srv.URL+"/admin/v1/Users/"+r.json["id"].(string) {
		t.Fatalf("create through Handler: %d %s", r.status, r.body)
	}
	testutil.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if hits != 1 {
			return fmt.Errorf("webhook hits %d", hits)
		}
		return nil
	})
}

// TestSeedRepoCalls replays the SCIM calls of the kiranthakkar/ocifunctions
// group-replication functions (docs/oci-sources.md §1a), as they send them.
func TestSeedRepoCalls(t *testing.T) {
	src := start(t, baseConfig())
	cfg := baseConfig()
	cfg.Name = "tgt"
	tgt := start(t, cfg)
	stok, ttok := getToken(t, src), getToken(t, tgt)

	// Their auth header is Bearer base64(id:secret), not a token: 401.
	fake := base64.StdEncoding.EncodeToString([]byte(clientID + ":" + clientSecret))
	if r := call(t, http.MethodGet, tgt.URL()+"/admin/v1/Groups", fake, nil); r.status != 401 {
		t.Errorf("Bearer base64(id:secret): %d, want 401", r.status)
	}

	uid := mustCreate(t, src, stok, "Users", userBody("jdoe@example.com"))
	gid := mustCreate(t, src, stok, "Groups", map[string]any{"displayName": "Ops",
		"urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group": map[string]any{"description": "Operations"},
		"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:Group", "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group",
			"urn:ietf:params:scim:schemas:extension:custom:2.0:Group"}})

	// CreateGroup: read the source group, create it in the target.
	// (python requests sends spaces as %20 and quotes as %22, as requote does here)
	r := call(t, http.MethodGet, src.URL()+"/admin/v1/Groups/"+gid+requote("?attributes=displayName, urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group:description"), stok, nil)
	desc := r.json["urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group"].(map[string]any)["description"]
	if r.status != 200 || r.json["displayName"] != "Ops" || desc != "Operations" {
		t.Fatalf("read source group: %d %s", r.status, r.body)
	}
	r = call(t, http.MethodPost, tgt.URL()+"/admin/v1/Groups", ttok, map[string]any{"displayName": "Ops",
		"urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group": map[string]any{"description": desc},
		"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:Group", "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group",
			"urn:ietf:params:scim:schemas:extension:custom:2.0:Group"}})
	if r.status != 201 {
		t.Fatalf("create target group: %d %s", r.status, r.body)
	}
	// Look the group up by name.
	r = call(t, http.MethodGet, tgt.URL()+requote(`/admin/v1/Groups?filter=displayName eq "Ops"&attributes=displayName`), ttok, nil)
	if r.status != 200 || r.json["totalResults"] != 1.0 {
		t.Fatalf("lookup by name: %d %s", r.status, r.body)
	}
	tgid := r.json["Resources"].([]any)[0].(map[string]any)["id"].(string)

	// AddUserToGroup: the user is missing in the target, so it is created from the source.
	r = call(t, http.MethodGet, tgt.URL()+requote(`/admin/v1/Users?filter=userName eq "jdoe@example.com"&attributes=userName`), ttok, nil)
	if r.json["totalResults"] != 0.0 {
		t.Fatalf("user already in target: %s", r.body)
	}
	su := call(t, http.MethodGet, src.URL()+"/admin/v1/Users/"+uid, stok, nil).json
	r = call(t, http.MethodPost, tgt.URL()+"/admin/v1/Users", ttok, map[string]any{
		"schemas":  []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"name":     map[string]any{"givenName": su["name"].(map[string]any)["givenName"], "familyName": su["name"].(map[string]any)["familyName"]},
		"userName": su["userName"],
		"emails":   []any{map[string]any{"value": su["emails"].([]any)[0].(map[string]any)["value"], "type": "work", "primary": true}},
	})
	if r.status != 201 {
		t.Fatalf("create target user: %d %s", r.status, r.body)
	}
	tuid := r.json["id"].(string)
	r = call(t, http.MethodPatch, tgt.URL()+"/admin/v1/Groups/"+tgid, ttok, map[string]any{
		"schemas":    []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": tuid, "type": "User"}}}}})
	if r.status != 200 {
		t.Fatalf("add member: %d %s", r.status, r.body)
	}
	// UpdateGroup: rename and describe.
	r = call(t, http.MethodPatch, tgt.URL()+"/admin/v1/Groups/"+tgid, ttok, map[string]any{
		"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{
			map[string]any{"op": "replace", "path": "displayName", "value": "Operations"},
			map[string]any{"op": "replace", "path": "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group:description", "value": "Ops team"},
		}})
	if r.status != 200 {
		t.Fatalf("update group: %d %s", r.status, r.body)
	}
	// RemoveUserFromGroup, then DeleteGroup.
	r = call(t, http.MethodPatch, tgt.URL()+"/admin/v1/Groups/"+tgid, ttok, map[string]any{
		"schemas":    []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "remove", "path": `members[value eq "` + tuid + `"]`}}})
	if r.status != 200 {
		t.Fatalf("remove member: %d %s", r.status, r.body)
	}
	if r := call(t, http.MethodDelete, tgt.URL()+"/admin/v1/Groups/"+tgid, ttok, nil); r.status != 204 {
		t.Fatalf("delete group: %d", r.status)
	}
	if st := tgt.Stats(); st.Groups != 0 || st.Users != 1 || st.Memberships != 0 {
		t.Errorf("target after replay: %+v", st)
	}
}

func requote(s string) string { return strings.NewReplacer(" ", "%20", `"`, "%22").Replace(s) }

// TestMembershipFilterCreationOrder: a list narrowed through the membership
// index (groups.value, members[value eq]) comes back in the order the
// resources were created, not the order the memberships were made.
func TestMembershipFilterCreationOrder(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	u1 := mustCreate(t, d, tok, "Users", userBody("u1@example.com"))
	u2 := mustCreate(t, d, tok, "Users", userBody("u2@example.com"))
	u3 := mustCreate(t, d, tok, "Users", userBody("u3@example.com"))
	g1 := mustCreate(t, d, tok, "Groups", groupBody("g1"))
	g2 := mustCreate(t, d, tok, "Groups", groupBody("g2", u3, u2, u1))
	g3 := mustCreate(t, d, tok, "Groups", groupBody("g3", u2))
	r := call(t, http.MethodPatch, d.URL()+"/admin/v1/Groups/"+g1, tok,
		patchBody(op("add", "members", []any{map[string]any{"value": u2, "type": "User"}})))
	if r.status != http.StatusOK {
		t.Fatalf("add member: %d %s", r.status, r.body)
	}
	ids := func(endpoint, filter string) []string {
		t.Helper()
		r := call(t, http.MethodGet, d.URL()+"/admin/v1/"+endpoint+"?attributes=id&filter="+url.QueryEscape(filter), tok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("list %s %s: %d %s", endpoint, filter, r.status, r.body)
		}
		var out []string
		for _, res := range r.json["Resources"].([]any) {
			out = append(out, res.(map[string]any)["id"].(string))
		}
		return out
	}
	if got, want := ids("Users", `groups.value eq "`+g2+`"`), []string{u1, u2, u3}; !slices.Equal(got, want) {
		t.Errorf("users of g2 = %v, want %v (creation order)", got, want)
	}
	if got, want := ids("Groups", `members[value eq "`+u2+`"]`), []string{g1, g2, g3}; !slices.Equal(got, want) {
		t.Errorf("groups of u2 = %v, want %v (creation order)", got, want)
	}
}

// TestDiscoveryEndpoints: ResourceTypes and Schemas list every entry, find
// one by id ignoring case, and answer 404 for an unknown id.
func TestDiscoveryEndpoints(t *testing.T) {
	d := start(t, baseConfig())
	tok := getToken(t, d)
	get := func(path string) response {
		t.Helper()
		return call(t, http.MethodGet, d.URL()+"/admin/v1/"+path, tok, nil)
	}
	for _, tt := range []struct {
		list, one, wantID string
		atLeast           int
	}{
		{"ResourceTypes", "ResourceTypes/gROUP", "Group", 2},
		{"Schemas", "Schemas/" + strings.ToUpper(identitydomain.SchemaUser), identitydomain.SchemaUser, 3},
	} {
		r := get(tt.list)
		items, _ := r.json["Resources"].([]any)
		if r.status != http.StatusOK || len(items) < tt.atLeast || r.json["totalResults"] != float64(len(items)) {
			t.Errorf("GET %s: %d %s", tt.list, r.status, r.body)
		}
		if r := get(tt.one); r.status != http.StatusOK || r.json["id"] != tt.wantID {
			t.Errorf("GET %s: %d %s, want id %s", tt.one, r.status, r.body, tt.wantID)
		}
		if r := get(tt.list + "/nope"); r.status != http.StatusNotFound {
			t.Errorf("GET %s/nope: %d %s, want 404", tt.list, r.status, r.body)
		}
	}
}
