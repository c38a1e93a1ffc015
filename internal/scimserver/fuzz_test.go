package scimserver

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/scimfilter"
)

// FuzzFilterAndPatchPath feeds outside input to the endpoint's parsers: a
// filter (parsed, narrowed through the indexes, evaluated against a user)
// and a PATCH operation (path, op and value), applied to a user and a
// group. Nothing may panic, an error must be a SCIM *Error, and a PATCH
// that succeeds must leave a resource that normalises to itself.
// `go test -fuzz FuzzFilterAndPatchPath ./internal/scimserver` explores;
// plain go test replays the seeds and testdata/fuzz.
func FuzzFilterAndPatchPath(f *testing.F) {
	for _, s := range []struct{ filter, op, path, value string }{
		{`userName eq "ann"`, "replace", "active", `"False"`},
		{`emails[type eq "work" and value co "@"]`, "Replace", `emails[type eq "work"].value`, `"x@y"`},
		{`groups.value eq "g1" and (id eq "a" or id eq "b")`, "remove", `members[value eq "u1"]`, `null`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"`, "add", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", `"m"`},
		{`not (active eq false)`, "add", "", `{"name.givenName":"A","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"D"}`},
		{`meta.lastModified gt "2020-01-01T00:00:00Z"`, "Add", "members", `[{"value":"u1"},{"value":"u2"}]`},
		{`((((a pr))))`, "replace", `emails[type eq "home"]`, `{"value":"h"}`},
	} {
		f.Add(s.filter, s.op, s.path, s.value)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, filter, op, path, value string) {
		d := &directory{members: map[string]map[string]struct{}{"g1": {"u1": {}}}, memberOf: map[string]map[string]struct{}{"u1": {"g1": {}}}}
		for i := range d.res {
			d.res[i] = map[string]*entry{}
			d.byName[i] = map[string]string{}
			d.byExt[i] = map[string]string{}
		}
		attrs := map[string]any{"userName": "ann", "active": true, "emails": []any{map[string]any{"value": "a@w", "type": "work"}},
			"name": map[string]any{"givenName": "Ann"}}
		raw, _ := json.Marshal(attrs)
		rec := &record{ID: "u1", Version: 1, Created: now, Modified: now, Name: "ann", Attrs: raw}
		d.res[kindUser]["u1"] = &entry{rev: 1, rec: rec}
		d.byName[kindUser]["ann"] = "u1"
		d.res[kindGroup]["g1"] = &entry{rev: 2, rec: &record{ID: "g1", Version: 1, Created: now, Modified: now, Name: "G"}}

		if flt, err := scimfilter.Parse(filter); err == nil {
			for _, k := range []kind{kindUser, kindGroup} {
				_, _ = d.candidates(k, flt.Expr())
			}
			_, _ = flt.Match(filterObject{k: kindUser, rec: rec, attrs: scimfilter.Map(attrs), dir: d})
		}
		if _, err := parseProjection(kindGroup, filter, path); err != nil && err.Status != 400 {
			t.Fatalf("projection error %v", err)
		}

		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			v = value
		}
		o := patchOperation{Op: op, Value: v}
		if path != "" {
			o.Path = &path
		}
		for _, k := range []kind{kindUser, kindGroup} {
			doc := map[string]any{"userName": "ann", "displayName": "G", "members": []any{map[string]any{"value": "u1"}}}
			out, perr := applyPatch(k, "u1", doc, []patchOperation{o})
			if perr != nil {
				var e *Error
				if !errors.As(perr, &e) || e.Status != 400 {
					t.Fatalf("applyPatch error %v", perr)
				}
				continue
			}
			again := cloneMap(out)
			if err := normalize(k, again); err != nil {
				t.Fatalf("a patched resource does not normalise: %v", err)
			}
			if a, b := mustJSON(t, again), mustJSON(t, out); a != b {
				t.Fatalf("normalise is not idempotent:\n%s\n%s", b, a)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
