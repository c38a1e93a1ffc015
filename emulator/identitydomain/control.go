package identitydomain

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// The control endpoints, under /_emulator/, need no token and are never
// rate-limited or faulted:
//
//	GET  /_emulator/stats     Stats as JSON
//	GET  /_emulator/faults    the active Faults
//	POST /_emulator/faults    change faults: fields present in the JSON body
//	                          replace the active ones, others stay; durations
//	                          are Go duration strings ("250ms") or nanoseconds
//	POST /_emulator/reset     Reset
//	POST /_emulator/seed      load a seed (YAML or JSON body, see SeedData)
//	POST /_emulator/generate  Generate (GenerateConfig as JSON)
//	GET  /_emulator/writes    the write log (writelog.go), ?after=SEQ
//	GET  /_emulator/keys      the published signing keys (kid, x5t)
//	POST /_emulator/keys/rotate  RotateSigningKey; {"dropOld":true} also
//	                          unpublishes the previous keys

func (d *Domain) serveControl(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<20)
	fail := func(status int, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	ok := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
	switch route := r.Method + " " + strings.TrimSuffix(r.URL.Path, "/"); route {
	case "GET /_emulator/stats":
		ok(d.Stats())
	case "GET /_emulator/writes":
		l, err := d.writesFor(r)
		if err != nil {
			fail(http.StatusBadRequest, err)
			return
		}
		ok(l)
	case "GET /_emulator/faults":
		ok(d.Faults())
	case "POST /_emulator/faults":
		f := d.Faults()
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil && err != io.EOF {
			fail(http.StatusBadRequest, err)
			return
		}
		if err := d.SetFaults(f); err != nil {
			fail(http.StatusBadRequest, err)
			return
		}
		ok(d.Faults())
	case "GET /_emulator/keys":
		keys, err := d.SigningKeys()
		if err != nil {
			fail(http.StatusInternalServerError, err)
			return
		}
		ok(keys)
	case "POST /_emulator/keys/rotate":
		var req struct {
			DropOld bool `json:"dropOld"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil && err != io.EOF {
			fail(http.StatusBadRequest, err)
			return
		}
		keys, err := d.RotateSigningKey(req.DropOld)
		if err != nil {
			fail(http.StatusInternalServerError, err)
			return
		}
		ok(keys)
	case "POST /_emulator/reset":
		d.Reset()
		ok(d.Stats())
	case "POST /_emulator/seed":
		if err := d.Seed(r.Body); err != nil {
			fail(http.StatusBadRequest, err)
			return
		}
		ok(d.Stats())
	case "POST /_emulator/generate":
		var gc GenerateConfig
		if err := json.NewDecoder(r.Body).Decode(&gc); err != nil {
			fail(http.StatusBadRequest, err)
			return
		}
		if err := d.Generate(gc); err != nil {
			fail(http.StatusBadRequest, err)
			return
		}
		ok(d.Stats())
	default:
		fail(http.StatusNotFound, errUnknownControl(route))
	}
}

type errUnknownControl string

func (e errUnknownControl) Error() string {
	return "no control endpoint " + string(e) + "; see GET /_emulator/stats, GET|POST /_emulator/faults, POST /_emulator/reset, /_emulator/seed, /_emulator/generate, GET /_emulator/keys, POST /_emulator/keys/rotate"
}
