package scimserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/secret"
)

const testToken = "test-token-0123456789abcdef"

// harness is a server for one source "idp" at /scim/v2/idp, on a real
// JetStream, behind a real HTTP server.
type harness struct {
	t    testing.TB
	nats *bustest.Server
	bus  *bus.Bus
	srv  *Server
	http *httptest.Server
	base string
}

func newHarness(t testing.TB, opts ...Option) *harness {
	t.Helper()
	ns := bustest.RunServer(t)
	return newHarnessOn(t, ns, opts...)
}

func newHarnessOn(t testing.TB, ns *bustest.Server, opts ...Option) *harness {
	t.Helper()
	b := ns.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := New(ctx, b, []Source{{Name: "idp", Path: "/scim/v2/idp", Token: secret.NewValue(testToken)}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &harness{t: t, nats: ns, bus: b, srv: srv, http: hs, base: hs.URL + "/scim/v2/idp"}
}

// do sends a request with the token; body is JSON-encoded unless a string.
func (h *harness) do(method, path string, body any, hdr ...string) (*http.Response, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	}
	return resp, out
}

// must sends a request and fails unless it is answered with status.
func (h *harness) must(status int, method, path string, body any, hdr ...string) map[string]any {
	h.t.Helper()
	resp, out := h.do(method, path, body, hdr...)
	if resp.StatusCode != status {
		h.t.Fatalf("%s %s: status %d, want %d: %v", method, path, resp.StatusCode, status, out)
	}
	return out
}

// events returns every identity event in IAM_EVENTS, in order.
func (h *harness) events() []*iamflowv1.IdentityEvent {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js := h.bus.JetStream()
	st, err := js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	n := int(info.State.Msgs)
	if n == 0 {
		return nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*iamflowv1.IdentityEvent
	for len(out) < n {
		batch, err := c.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			h.t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			e, err := event.Unmarshal(m.Data())
			if err != nil {
				h.t.Fatal(err)
			}
			if m.Subject() != mustSubject(h.t, e) {
				h.t.Fatalf("event %s on subject %s", e.GetId(), m.Subject())
			}
			out = append(out, e)
			got++
		}
		if got == 0 {
			h.t.Fatalf("read %d of %d events", len(out), n)
		}
	}
	return out
}

func mustSubject(t testing.TB, e *iamflowv1.IdentityEvent) string {
	s, err := event.Subject(e.GetDomain(), e.GetKind(), e.GetAction())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// types lists the events' types and resource names, for comparisons.
func types(evs []*iamflowv1.IdentityEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		s := e.GetType() + " " + e.GetResource().GetName()
		if e.GetRelated() != nil {
			s += " " + e.GetRelated().GetName()
		}
		out[i] = s
	}
	return out
}

func user(name string, extra ...any) map[string]any {
	u := map[string]any{"schemas": []string{SchemaUser}, "userName": name, "active": true,
		"name":   map[string]any{"givenName": "Given", "familyName": "Family"},
		"emails": []any{map[string]any{"value": name, "type": "work", "primary": true}}}
	for i := 0; i+1 < len(extra); i += 2 {
		u[extra[i].(string)] = extra[i+1]
	}
	return u
}

func group(name string, members ...string) map[string]any {
	g := map[string]any{"schemas": []string{SchemaGroup}, "displayName": name}
	if len(members) > 0 {
		var ms []any
		for _, m := range members {
			ms = append(ms, map[string]any{"value": m})
		}
		g["members"] = ms
	}
	return g
}

func patchOps(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	return map[string]any{"schemas": []string{SchemaPatchOp}, "Operations": list}
}
