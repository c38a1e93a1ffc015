package scimserver

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestUserLifecycle(t *testing.T) {
	h := newHarness(t)
	created := h.must(http.StatusCreated, "POST", "/Users", user("ann@example.com", "externalId", "ext-1"))
	id, _ := created["id"].(string)
	if id == "" || created["userName"] != "ann@example.com" {
		t.Fatalf("created = %v", created)
	}
	meta := created["meta"].(map[string]any)
	if meta["version"] != `W/"1"` || meta["resourceType"] != "User" || !strings.HasSuffix(meta["location"].(string), "/scim/v2/idp/Users/"+id) {
		t.Fatalf("meta = %v", meta)
	}
	got := h.must(http.StatusOK, "GET", "/Users/"+id, nil)
	if got["externalId"] != "ext-1" {
		t.Fatalf("GET = %v", got)
	}
	// Okta's profile update: PUT the whole resource.
	put := user("ann@example.com", "externalId", "ext-1", "displayName", "Ann")
	got = h.must(http.StatusOK, "PUT", "/Users/"+id, put)
	if got["displayName"] != "Ann" || got["meta"].(map[string]any)["version"] != `W/"2"` {
		t.Fatalf("PUT = %v", got)
	}
	// Okta's deactivation.
	h.must(http.StatusOK, "PATCH", "/Users/"+id, patchOps(map[string]any{"op": "replace", "value": map[string]any{"active": false}}))
	// Entra's: capitalised op, boolean as a string.
	h.must(http.StatusOK, "PATCH", "/Users/"+id, patchOps(map[string]any{"op": "Replace", "path": "active", "value": "True"}))
	got = h.must(http.StatusOK, "GET", "/Users/"+id, nil)
	if got["active"] != true {
		t.Fatalf("active = %v", got["active"])
	}
	h.must(http.StatusNoContent, "DELETE", "/Users/"+id, nil)
	h.must(http.StatusNotFound, "GET", "/Users/"+id, nil)
	// A replayed DELETE: 404, and nothing new is stored.
	h.must(http.StatusNotFound, "DELETE", "/Users/"+id, nil)

	want := []string{
		"user.created ann@example.com",
		"user.updated ann@example.com",
		"user.deactivated ann@example.com",
		"user.activated ann@example.com",
		"user.deleted ann@example.com",
	}
	if got := types(h.events()); !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
