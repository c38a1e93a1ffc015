package identitydomain_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// TestETagWithPlainSCIMServer: ETags against a server that is not the
// emulator (a plain SCIM server under /scim/v2 with RFC 7644's ETag header
// and error body, no IDCS extensions): the If-Match given is sent as is, the
// new ETag comes back in the receipt, and a 412 is PreconditionFailed after
// one request (the caller re-reads; the client does not loop).
func TestETagWithPlainSCIMServer(t *testing.T) {
	t.Parallel()
	var patches atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /scim/v2/ServiceProviderConfig", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/scim+json")
		_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"patch":{"supported":true},"etag":{"supported":true},"filter":{"supported":true,"maxResults":100},"sort":{"supported":false},"bulk":{"supported":false},"changePassword":{"supported":false}}`))
	})
	mux.HandleFunc("GET /scim/v2/ResourceTypes", http.NotFound)
	mux.HandleFunc("PATCH /scim/v2/Users/u1", func(w http.ResponseWriter, r *http.Request) {
		patches.Add(1)
		w.Header().Set("Content-Type", "application/scim+json")
		if r.Header.Get("If-Match") != `W/"v2"` {
			w.WriteHeader(http.StatusPreconditionFailed)
			_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"412","detail":"version mismatch"}`))
			return
		}
		w.Header().Set("ETag", `W/"v3"`)
		_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"ann","meta":{"version":"W/\"v3\""}}`))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	cfg := identitydomain.DefaultConfig()
	cfg.URL, cfg.SCIMPath, cfg.Auth, cfg.StaticToken = ts.URL, "/scim/v2/", identitydomain.AuthStatic, secretFile(t, "tok")
	c, err := identitydomain.New(context.Background(), "plain", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	caps, err := c.Capabilities(ctx)
	if err != nil || !caps.ETag || caps.Sort || caps.FilterMaxResults != 100 || !caps.Declares("User", "anything") {
		t.Fatalf("capabilities = %+v, %v", caps, err)
	}
	_, _, err = c.PatchUser(ctx, "u1", `W/"v1"`, identitydomain.Replace("displayName", "Ann"))
	if e := kindOf(t, err); !errors.Is(err, identitydomain.ErrPreconditionFailed) || e.Attempts != 1 || e.Detail != "version mismatch" {
		t.Errorf("stale If-Match: %+v", e)
	}
	u, r, err := c.PatchUser(ctx, "u1", `W/"v2"`, identitydomain.Replace("displayName", "Ann"))
	if err != nil || r.ETag != `W/"v3"` || deref(u.UserName) != "ann" {
		t.Errorf("current If-Match: %+v %+v %v", u, r, err)
	}
	if n := patches.Load(); n != 2 {
		t.Errorf("%d PATCH requests, want 2", n)
	}
}
