package scimserver

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentWrites: an IdP's parallel requests. Creates of one userName
// race: one wins, the others get 409. Member additions to one group race:
// every member ends up in it, each with one event.
func TestConcurrentWrites(t *testing.T) {
	h := newHarness(t)
	const n = 24
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := h.do("POST", "/Users", user("same@example.com"))
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Fatalf("status %d", c)
		}
	}
	if created != 1 {
		t.Fatalf("%d creates of one userName succeeded", created)
	}
	var ids []string
	for i := range n {
		ids = append(ids, h.must(http.StatusCreated, "POST", "/Users", user(fmt.Sprintf("m%d@example.com", i)))["id"].(string))
	}
	g := h.must(http.StatusCreated, "POST", "/Groups", group("G"))["id"].(string)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.must(http.StatusNoContent, "PATCH", "/Groups/"+g, patchOps(map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": id}}}))
		}()
	}
	wg.Wait()
	if got := len(h.must(http.StatusOK, "GET", "/Groups/"+g, nil)["members"].([]any)); got != n {
		t.Fatalf("%d members after %d parallel additions", got, n)
	}
	added := 0
	for _, e := range h.events() {
		if e.GetType() == "membership.member_added" {
			added++
		}
	}
	if added != n {
		t.Fatalf("%d member_added events, want %d", added, n)
	}
}
