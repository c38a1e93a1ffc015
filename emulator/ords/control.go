package ords

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// The control endpoints, under /_emulator/, need no credentials and are never
// faulted. ?db=<alias> picks one database; without it they cover all.
//
//	GET  /_emulator/stats          Stats per alias
//	GET  /_emulator/faults         the active Faults per alias
//	POST /_emulator/faults         change faults: fields present in the JSON
//	                               body replace the active ones, others stay;
//	                               latency is a Go duration ("250ms") or ns
//	POST /_emulator/reset          Reset (all databases)
//	POST /_emulator/seed           load a seed (YAML or JSON, see SeedData)
//	GET  /_emulator/users?db=A     Users of A
//	GET  /_emulator/roles?db=A     Roles of A
//	GET  /_emulator/statements?db=A the statement log of A
func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	ok := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
	alias := r.URL.Query().Get("db")
	targets, err := e.targets(alias)
	if err != nil {
		fail(http.StatusNotFound, err.Error())
		return
	}
	perDB := func(f func(*database) any) map[string]any {
		out := map[string]any{}
		for _, db := range targets {
			out[db.cfg.Alias] = f(db)
		}
		return out
	}
	one := func() bool {
		if alias == "" {
			fail(http.StatusBadRequest, "name a database: ?db=<alias>")
			return false
		}
		return true
	}
	switch route := r.Method + " " + strings.TrimSuffix(r.URL.Path, "/"); route {
	case "GET /_emulator/stats":
		ok(perDB(func(db *database) any { return e.Stats(db.cfg.Alias) }))
	case "GET /_emulator/faults":
		ok(perDB(func(db *database) any { return e.Faults(db.cfg.Alias) }))
	case "POST /_emulator/faults":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		for _, db := range targets {
			f := e.Faults(db.cfg.Alias)
			if len(strings.TrimSpace(string(body))) > 0 {
				if err := json.Unmarshal(body, &f); err != nil {
					fail(http.StatusBadRequest, err.Error())
					return
				}
			}
			if err := e.SetFaults(db.cfg.Alias, f); err != nil {
				fail(http.StatusBadRequest, err.Error())
				return
			}
		}
		ok(perDB(func(db *database) any { return e.Faults(db.cfg.Alias) }))
	case "POST /_emulator/reset":
		e.Reset()
		ok(perDB(func(db *database) any { return e.Stats(db.cfg.Alias) }))
	case "POST /_emulator/seed":
		if err := e.Seed(r.Body); err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		ok(perDB(func(db *database) any { return len(e.Users(db.cfg.Alias)) }))
	case "GET /_emulator/users":
		if one() {
			ok(e.Users(alias))
		}
	case "GET /_emulator/roles":
		if one() {
			ok(e.Roles(alias))
		}
	case "GET /_emulator/statements":
		if one() {
			ok(e.Statements(alias))
		}
	default:
		fail(http.StatusNotFound, "no control endpoint "+route+"; see GET /_emulator/stats, GET|POST /_emulator/faults, POST /_emulator/reset, POST /_emulator/seed, GET /_emulator/users|roles|statements?db=<alias>")
	}
}
