package scimserver

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"
)

func TestApplyPatch(t *testing.T) {
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	base := `{"userName":"ann","active":true,"name":{"givenName":"Ann","familyName":"Lee"},
		"emails":[{"value":"ann@work","type":"work","primary":true},{"value":"ann@home","type":"home"}],
		"` + ent + `":{"department":"Eng"}}`
	tests := []struct {
		name string
		ops  string
		want string // the attributes that differ from base, as JSON; "" for none
		drop []string
	}{
		{"replace without path (Okta deactivation)", `[{"op":"replace","value":{"active":false}}]`, `{"active":false}`, nil},
		{"capitalised op, boolean string (Entra)", `[{"op":"Replace","path":"active","value":"False"}]`, `{"active":false}`, nil},
		{"sub-attribute", `[{"op":"replace","path":"name.familyName","value":"Li"}]`, `{"name":{"givenName":"Ann","familyName":"Li"}}`, nil},
		{"value filter and sub-attribute (Entra)", `[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"a@new"}]`,
			`{"emails":[{"value":"a@new","type":"work","primary":true},{"value":"ann@home","type":"home"}]}`, nil},
		{"value filter matching nothing adds the value", `[{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555"}]`,
			`{"phoneNumbers":[{"type":"mobile","value":"+1 555"}]}`, nil},
		{"remove by value filter", `[{"op":"remove","path":"emails[type eq \"home\"]"}]`,
			`{"emails":[{"value":"ann@work","type":"work","primary":true}]}`, nil},
		{"removing the last values by filter unassigns the attribute", `[{"op":"remove","path":"emails[type eq \"home\"]"},{"op":"remove","path":"emails[type eq \"work\"]"}]`,
			``, []string{"emails"}},
		{"adding no values assigns nothing", `[{"op":"add","path":"phoneNumbers","value":[]}]`, ``, nil},
		{"remove what is not there", `[{"op":"remove","path":"title"},{"op":"remove","path":"emails[type eq \"other\"]"}]`, ``, nil},
		{"add to a multi-valued attribute", `[{"op":"add","path":"emails","value":[{"value":"x@y","type":"other"},{"value":"ann@home","type":"home"}]}]`,
			`{"emails":[{"value":"ann@work","type":"work","primary":true},{"value":"ann@home","type":"home"},{"value":"x@y","type":"other"}]}`, nil},
		{"extension attribute by full path", `[{"op":"replace","path":"` + ent + `:department","value":"Ops"}]`, `{"` + ent + `":{"department":"Ops"}}`, nil},
		{"extension object without path", `[{"op":"replace","value":{"` + ent + `":{"costCenter":"42"}}}]`, `{"` + ent + `":{"department":"Eng","costCenter":"42"}}`, nil},
		{"flattened keys without path (Entra)", `[{"op":"Replace","value":{"name.givenName":"Anne","` + ent + `:department":"Ops","displayName":"Anne Lee"}}]`,
			`{"name":{"givenName":"Anne","familyName":"Lee"},"` + ent + `":{"department":"Ops"},"displayName":"Anne Lee"}`, nil},
		{"own id in a value object (Okta)", `[{"op":"replace","value":{"id":"u1","displayName":"A"}}]`, `{"displayName":"A"}`, nil},
		{"remove a whole attribute", `[{"op":"remove","path":"name"}]`, ``, []string{"name"}},
		{"null value removes", `[{"op":"replace","path":"` + ent + `","value":null}]`, ``, []string{ent}},
		{"operations in order", `[{"op":"add","path":"title","value":"a"},{"op":"replace","path":"title","value":"b"}]`, `{"title":"b"}`, nil},
		{"attribute names in any case", `[{"op":"replace","path":"NAME.GIVENNAME","value":"X"}]`, `{"name":{"givenName":"X","familyName":"Lee"}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			must(t, json.Unmarshal([]byte(base), &doc))
			var ops []patchOperation
			must(t, json.Unmarshal([]byte(tt.ops), &ops))
			got, err := applyPatch(kindUser, "u1", doc, ops)
			if err != nil {
				t.Fatalf("applyPatch: %v", err)
			}
			want := map[string]any{}
			must(t, json.Unmarshal([]byte(base), &want))
			if tt.want != "" {
				var diff map[string]any
				must(t, json.Unmarshal([]byte(tt.want), &diff))
				for k, v := range diff {
					want[k] = v
				}
			}
			for _, k := range tt.drop {
				delete(want, k)
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Fatalf("got  %s\nwant %s", g, w)
			}
			var orig map[string]any
			must(t, json.Unmarshal([]byte(base), &orig))
			if !reflect.DeepEqual(doc, orig) {
				t.Fatal("applyPatch changed its input")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestGroupMembership: Entra's add and remove in one request, removal by
// value list and by filter, Okta's member replace; replays publish nothing
// new.
func TestGroupMembership(t *testing.T) {
	h := newHarness(t)
	var u []string
	for _, n := range []string{"ann", "bob", "cat", "dan"} {
		u = append(u, h.must(http.StatusCreated, "POST", "/Users", user(n+"@example.com"))["id"].(string))
	}
	g := h.must(http.StatusCreated, "POST", "/Groups", group("Eng", u[0]))["id"].(string)
	m := func(ids ...string) []any {
		var out []any
		for _, id := range ids {
			out = append(out, map[string]any{"value": id})
		}
		return out
	}
	members := func() []string {
		var out []string
		for _, x := range h.must(http.StatusOK, "GET", "/Groups/"+g, nil)["members"].([]any) {
			out = append(out, x.(map[string]any)["value"].(string))
		}
		slices.Sort(out)
		return out
	}
	addRemove := patchOps(
		map[string]any{"op": "Add", "path": "members", "value": m(u[1], u[2])},
		map[string]any{"op": "Remove", "path": "members", "value": m(u[0])})
	h.must(http.StatusNoContent, "PATCH", "/Groups/"+g, addRemove)
	h.must(http.StatusNoContent, "PATCH", "/Groups/"+g, addRemove) // replayed
	if got, want := members(), slices.Sorted(slices.Values([]string{u[1], u[2]})); !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	h.must(http.StatusNoContent, "PATCH", "/Groups/"+g, patchOps(map[string]any{"op": "remove", "path": `members[value eq "` + u[1] + `"]`}))
	h.must(http.StatusNoContent, "PATCH", "/Groups/"+g, patchOps(map[string]any{"op": "remove", "path": `members[value eq "` + u[1] + `"]`}))
	// Okta: rename and set members in one PATCH.
	h.must(http.StatusNoContent, "PATCH", "/Groups/"+g, patchOps(
		map[string]any{"op": "replace", "value": map[string]any{"id": g, "displayName": "Engineering"}},
		map[string]any{"op": "replace", "path": "members", "value": m(u[2], u[3])}))
	// PUT without members renames and keeps them.
	h.must(http.StatusOK, "PUT", "/Groups/"+g, group("Engineers"))
	if got, want := members(), slices.Sorted(slices.Values([]string{u[2], u[3]})); !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	want := []string{
		"user.created ann@example.com", "user.created bob@example.com", "user.created cat@example.com", "user.created dan@example.com",
		"group.created Eng", "membership.member_added Eng ann@example.com",
		"membership.member_added Eng bob@example.com", "membership.member_added Eng cat@example.com", "membership.member_removed Eng ann@example.com",
		"membership.member_removed Eng bob@example.com",
		"group.updated Engineering", "membership.member_added Engineering dan@example.com",
		"group.updated Engineers",
	}
	if got := types(h.events()); !slices.Equal(got, want) {
		t.Fatalf("events:\n%v\nwant\n%v", got, want)
	}
}
