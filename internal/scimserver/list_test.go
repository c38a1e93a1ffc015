package scimserver

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestListFiltersPagingProjection(t *testing.T) {
	h := newHarness(t)
	var ids []string
	for i, n := range []string{"ann", "bob", "cat", "dan", "eve"} {
		u := user(n+"@example.com", "externalId", "x-"+n, "displayName", n, "title", []string{"eng", "ops"}[i%2])
		u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = map[string]any{"department": "D" + n}
		ids = append(ids, h.must(http.StatusCreated, "POST", "/Users", u)["id"].(string))
	}
	admins := h.must(http.StatusCreated, "POST", "/Groups", group("Admins", ids[0], ids[1]))["id"].(string)
	h.must(http.StatusCreated, "POST", "/Groups", group("Ops", ids[2]))

	names := func(list map[string]any, attr string) []string {
		var out []string
		for _, r := range list["Resources"].([]any) {
			v, _ := r.(map[string]any)[attr].(string)
			out = append(out, v)
		}
		slices.Sort(out)
		return out
	}
	q := func(path, filter string, extra ...string) map[string]any {
		v := url.Values{}
		if filter != "" {
			v.Set("filter", filter)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return h.must(http.StatusOK, "GET", path+"?"+v.Encode(), nil)
	}
	tests := []struct {
		path, filter string
		attr         string
		want         []string
	}{
		{"/Users", `userName eq "BOB@example.com"`, "userName", []string{"bob@example.com"}},
		{"/Users", `externalId eq "x-cat"`, "userName", []string{"cat@example.com"}},
		{"/Users", `externalId eq "X-CAT"`, "userName", nil}, // externalId is caseExact
		{"/Users", `id eq "` + ids[3] + `"`, "userName", []string{"dan@example.com"}},
		{"/Users", `userName eq "ann@example.com" or userName eq "eve@example.com"`, "userName", []string{"ann@example.com", "eve@example.com"}},
		{"/Users", `title eq "eng" and userName sw "c"`, "userName", []string{"cat@example.com"}},
		{"/Users", `emails[type eq "work" and value ew "n@example.com"]`, "userName", []string{"ann@example.com", "dan@example.com"}},
		{"/Users", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Deve"`, "userName", []string{"eve@example.com"}},
		{"/Users", `groups.value eq "` + admins + `"`, "userName", []string{"ann@example.com", "bob@example.com"}},
		{"/Users", `groups.value eq "` + admins + `" and (id eq "` + ids[1] + `" or id eq "` + ids[4] + `")`, "userName", []string{"bob@example.com"}},
		{"/Users", `userName eq "entra-test-connection-3c1e"`, "userName", nil}, // Entra's test connection
		{"/Groups", `displayName eq "admins"`, "displayName", []string{"Admins"}},
		{"/Groups", `members.value eq "` + ids[2] + `"`, "displayName", []string{"Ops"}},
		{"/Groups", `displayName co "p"`, "displayName", []string{"Ops"}},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			got := q(tt.path, tt.filter)
			if n := int(got["totalResults"].(float64)); n != len(tt.want) {
				t.Fatalf("totalResults %d, want %d", n, len(tt.want))
			}
			if g := names(got, tt.attr); !slices.Equal(g, tt.want) {
				t.Fatalf("got %v, want %v", g, tt.want)
			}
		})
	}

	// Paging: startIndex and count, totalResults, itemsPerPage (Okta's import).
	var seen []string
	for start := 1; start <= 5; start += 2 {
		page := q("/Users", "", "startIndex", itoa(start), "count", "2")
		if page["totalResults"].(float64) != 5 || page["startIndex"].(float64) != float64(start) {
			t.Fatalf("page at %d: %v", start, page)
		}
		seen = append(seen, names(page, "userName")...)
	}
	if len(seen) != 5 || len(slices.Compact(slices.Sorted(slices.Values(seen)))) != 5 {
		t.Fatalf("pages: %v", seen)
	}
	if c := q("/Users", "", "count", "0"); c["totalResults"].(float64) != 5 || len(c["Resources"].([]any)) != 0 {
		t.Fatalf("count=0: %v", c)
	}

	// excludedAttributes=members (Entra's group reads); attributes.
	g := q("/Groups", `displayName eq "Admins"`, "excludedAttributes", "members")["Resources"].([]any)[0].(map[string]any)
	if _, has := g["members"]; has || g["displayName"] != "Admins" || g["id"] != admins {
		t.Fatalf("excludedAttributes=members: %v", g)
	}
	g = h.must(http.StatusOK, "GET", "/Groups/"+admins, nil)
	if len(g["members"].([]any)) != 2 {
		t.Fatalf("members by default: %v", g["members"])
	}
	u := h.must(http.StatusOK, "GET", "/Users/"+ids[0]+"?attributes=userName,name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", nil)
	if u["userName"] != "ann@example.com" || u["id"] != ids[0] || u["emails"] != nil || u["name"].(map[string]any)["familyName"] != nil ||
		u["name"].(map[string]any)["givenName"] != "Given" || u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)["department"] != "Dann" {
		t.Fatalf("attributes=...: %v", u)
	}
	if gs := u["groups"]; gs != nil {
		t.Fatalf("groups returned without being asked for: %v", gs)
	}
	u = h.must(http.StatusOK, "GET", "/Users/"+ids[0]+"?excludedAttributes=emails,groups", nil)
	if u["emails"] != nil || u["groups"] != nil || u["userName"] == nil {
		t.Fatalf("excludedAttributes: %v", u)
	}
	// POST /.search: the same list, the query in the body.
	s := h.must(http.StatusOK, "POST", "/Users/.search", map[string]any{"schemas": []string{SchemaSearchRequest},
		"filter": `title eq "ops"`, "attributes": []string{"userName"}, "startIndex": 1, "count": 10})
	if got := names(s, "userName"); !slices.Equal(got, []string{"bob@example.com", "dan@example.com"}) {
		t.Fatalf(".search: %v", got)
	}
	// If-None-Match of the current version: 304.
	resp, _ := h.do("GET", "/Users/"+ids[0], nil, "If-None-Match", `W/"1"`)
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
}

func TestDiscovery(t *testing.T) {
	h := newHarness(t)
	spc := h.must(http.StatusOK, "GET", "/ServiceProviderConfig", nil)
	if spc["etag"].(map[string]any)["supported"] != true || spc["bulk"].(map[string]any)["supported"] != false ||
		spc["patch"].(map[string]any)["supported"] != true {
		t.Fatalf("ServiceProviderConfig = %v", spc)
	}
	rts := h.must(http.StatusOK, "GET", "/ResourceTypes", nil)
	if rts["totalResults"].(float64) != 2 {
		t.Fatalf("ResourceTypes = %v", rts)
	}
	rt := h.must(http.StatusOK, "GET", "/ResourceTypes/User", nil)
	if rt["endpoint"] != "/Users" || rt["schema"] != SchemaUser {
		t.Fatalf("ResourceTypes/User = %v", rt)
	}
	ss := h.must(http.StatusOK, "GET", "/Schemas", nil)
	if ss["totalResults"].(float64) != 3 {
		t.Fatalf("Schemas = %v", ss)
	}
	s := h.must(http.StatusOK, "GET", "/Schemas/"+SchemaGroup, nil)
	if s["id"] != SchemaGroup || len(s["attributes"].([]any)) != 2 {
		t.Fatalf("Schemas/Group = %v", s)
	}
	h.must(http.StatusNotFound, "GET", "/Schemas/urn:nope", nil)
}
