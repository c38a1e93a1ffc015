package ords

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/iamflow/iamflow/emulator/control"
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
	alias := r.URL.Query().Get("db")
	targets, err := e.targets(alias)
	if err != nil {
		control.Fail(w, http.StatusNotFound, err.Error())
		return
	}
	perDB := func(f func(alias string) any) func(*http.Request) (any, error) {
		return func(*http.Request) (any, error) {
			out := map[string]any{}
			for _, db := range targets {
				out[db.cfg.Alias] = f(db.cfg.Alias)
			}
			return out, nil
		}
	}
	one := func(f func(alias string) any) func(*http.Request) (any, error) {
		return func(*http.Request) (any, error) {
			if alias == "" {
				return nil, errors.New("name a database: ?db=<alias>")
			}
			return f(alias), nil
		}
	}
	stats := func(a string) any { return e.Stats(a) }
	faults := func(a string) any { return e.Faults(a) }
	control.Serve(w, r, maxBody, control.Endpoints{
		"GET /_emulator/stats":  perDB(stats),
		"GET /_emulator/faults": perDB(faults),
		"POST /_emulator/faults": func(r *http.Request) (any, error) {
			if err := e.setFaults(r, targets); err != nil {
				return nil, err
			}
			return perDB(faults)(r)
		},
		"POST /_emulator/reset": func(r *http.Request) (any, error) {
			e.Reset()
			return perDB(stats)(r)
		},
		"POST /_emulator/seed": func(r *http.Request) (any, error) {
			if err := e.Seed(r.Body); err != nil {
				return nil, err
			}
			return perDB(func(a string) any { return len(e.Users(a)) })(r)
		},
		"GET /_emulator/users":      one(func(a string) any { return e.Users(a) }),
		"GET /_emulator/roles":      one(func(a string) any { return e.Roles(a) }),
		"GET /_emulator/statements": one(func(a string) any { return e.Statements(a) }),
	}, func(route string) string {
		return "no control endpoint " + route + "; see GET /_emulator/stats, GET|POST /_emulator/faults, POST /_emulator/reset, POST /_emulator/seed, GET /_emulator/users|roles|statements?db=<alias>"
	})
}

// setFaults changes, on every target database, the faults named in the
// request's JSON body (an empty body changes none).
func (e *Emulator) setFaults(r *http.Request, targets []*database) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	for _, db := range targets {
		f := e.Faults(db.cfg.Alias)
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := json.Unmarshal(body, &f); err != nil {
				return err
			}
		}
		if err := e.SetFaults(db.cfg.Alias, f); err != nil {
			return err
		}
	}
	return nil
}
