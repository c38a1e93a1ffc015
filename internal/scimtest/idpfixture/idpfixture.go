// Package idpfixture holds, for tests, the request sequences identity
// providers send to a SCIM service provider, one fixture per IdP, written
// from their public provisioning guides (each fixture names its sources),
// and replays them against a server, checking the answers the IdP expects.
//
//	f := idpfixture.Load(t, "okta")
//	vars := f.Replay(t, baseURL, token)   // ids the server assigned, by name
//
// A step's path and body may use ${name} for a value saved by an earlier
// step (save: {"name": "<attribute of the answer>"}). expect is a subset of
// the answer: every key given must be there with that value (objects
// recursively, lists element by element); "$absent" says a key must not be.
// Nothing here is used by production code.
package idpfixture

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

//go:embed *.json
var files embed.FS

// Fixture is one IdP's request sequence.
type Fixture struct {
	// IdP is "okta" or "entra".
	IdP string `json:"idp"`
	// Sources are the public documents the sequence follows.
	Sources []string `json:"sources"`
	// Steps are sent in order.
	Steps []Step `json:"steps"`
}

// Step is one request and the answer the IdP expects.
type Step struct {
	Name   string            `json:"name"`
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Body   json.RawMessage   `json:"body,omitempty"`
	Status int               `json:"status"`
	Expect json.RawMessage   `json:"expect,omitempty"`
	Save   map[string]string `json:"save,omitempty"`
}

// Names lists the fixtures.
func Names() []string { return []string{"okta", "entra"} }

// Load reads the named fixture.
func Load(t testing.TB, name string) *Fixture {
	t.Helper()
	b, err := files.ReadFile(name + ".json")
	if err != nil {
		t.Fatalf("idpfixture: %v", err)
	}
	var f Fixture
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("idpfixture %s: %v", name, err)
	}
	return &f
}

// Replay sends every step to the SCIM base URL base with the bearer token
// and fails t at the first answer the IdP would not accept. It returns the
// saved values.
func (f *Fixture) Replay(t testing.TB, base, token string) map[string]string {
	t.Helper()
	vars := map[string]string{}
	client := &http.Client{Timeout: 30 * time.Second}
	for i, s := range f.Steps {
		path := expand(s.Path, vars, true)
		var body io.Reader
		if len(s.Body) > 0 {
			body = strings.NewReader(expand(string(s.Body), vars, false))
		}
		req, err := http.NewRequest(s.Method, base+path, body)
		if err != nil {
			t.Fatalf("%s step %d %q: %v", f.IdP, i+1, s.Name, err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/scim+json")
		if body != nil {
			req.Header.Set("Content-Type", "application/scim+json; charset=utf-8")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s step %d %q: %v", f.IdP, i+1, s.Name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.Status {
			t.Fatalf("%s step %d %q: %s %s answered %d, the IdP expects %d: %s", f.IdP, i+1, s.Name, s.Method, path, resp.StatusCode, s.Status, raw)
		}
		var got any
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("%s step %d %q: the answer is not JSON: %s", f.IdP, i+1, s.Name, raw)
			}
		}
		if len(s.Expect) > 0 {
			var want any
			if err := json.Unmarshal([]byte(expand(string(s.Expect), vars, false)), &want); err != nil {
				t.Fatalf("%s step %d %q: expect: %v", f.IdP, i+1, s.Name, err)
			}
			if err := subset(want, got, ""); err != nil {
				t.Fatalf("%s step %d %q: %v\nanswer: %s", f.IdP, i+1, s.Name, err, raw)
			}
		}
		for name, attr := range s.Save {
			obj, _ := got.(map[string]any)
			v, ok := obj[attr].(string)
			if !ok {
				t.Fatalf("%s step %d %q: the answer has no %s to save as %s", f.IdP, i+1, s.Name, attr, name)
			}
			vars[name] = v
		}
	}
	return vars
}

// expand replaces ${name} with vars[name] (query-escaped in paths).
func expand(s string, vars map[string]string, inPath bool) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
	}
	if inPath {
		s = strings.ReplaceAll(s, " ", "%20")
		s = strings.ReplaceAll(s, `"`, "%22")
	}
	return s
}

// subset checks that want is part of got.
func subset(want, got any, at string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %v", at, got)
		}
		for k, wv := range w {
			gv, has := g[k]
			if wv == "$absent" {
				if has {
					return fmt.Errorf("%s.%s: want it absent, got %v", at, k, gv)
				}
				continue
			}
			if !has {
				return fmt.Errorf("%s.%s: missing", at, k)
			}
			if err := subset(wv, gv, at+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: want %d values, got %v", at, len(w), got)
		}
		for i := range w {
			if err := subset(w[i], g[i], at+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("%s: want %v, got %v", at, want, got)
	}
	return nil
}
