package identitydomain

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/iamflow/iamflow/emulator/control"
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
	control.Serve(w, r, 64<<20, control.Endpoints{
		"GET /_emulator/stats":        func(*http.Request) (any, error) { return d.Stats(), nil },
		"GET /_emulator/writes":       func(r *http.Request) (any, error) { return d.writesFor(r) },
		"GET /_emulator/faults":       func(*http.Request) (any, error) { return d.Faults(), nil },
		"POST /_emulator/faults":      d.controlSetFaults,
		"GET /_emulator/keys":         d.controlKeys,
		"POST /_emulator/keys/rotate": d.controlRotateKeys,
		"POST /_emulator/reset": func(*http.Request) (any, error) {
			d.Reset()
			return d.Stats(), nil
		},
		"POST /_emulator/seed": func(r *http.Request) (any, error) {
			if err := d.Seed(r.Body); err != nil {
				return nil, err
			}
			return d.Stats(), nil
		},
		"POST /_emulator/generate": d.controlGenerate,
	}, func(route string) string { return errUnknownControl(route).Error() })
}

// controlSetFaults changes the faults named in the body and answers the
// active ones.
func (d *Domain) controlSetFaults(r *http.Request) (any, error) {
	f := d.Faults()
	if err := json.NewDecoder(r.Body).Decode(&f); err != nil && err != io.EOF {
		return nil, err
	}
	if err := d.SetFaults(f); err != nil {
		return nil, err
	}
	return d.Faults(), nil
}

// controlKeys answers the published signing keys.
func (d *Domain) controlKeys(*http.Request) (any, error) {
	keys, err := d.SigningKeys()
	if err != nil {
		return nil, control.WithStatus(http.StatusInternalServerError, err)
	}
	return keys, nil
}

// controlRotateKeys rotates the signing key, dropping the old ones when
// the body asks, and answers the published keys.
func (d *Domain) controlRotateKeys(r *http.Request) (any, error) {
	var req struct {
		DropOld bool `json:"dropOld"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil && err != io.EOF {
		return nil, err
	}
	keys, err := d.RotateSigningKey(req.DropOld)
	if err != nil {
		return nil, control.WithStatus(http.StatusInternalServerError, err)
	}
	return keys, nil
}

// controlGenerate generates the directory the body's GenerateConfig
// describes and answers the stats.
func (d *Domain) controlGenerate(r *http.Request) (any, error) {
	var gc GenerateConfig
	if err := json.NewDecoder(r.Body).Decode(&gc); err != nil {
		return nil, err
	}
	if err := d.Generate(gc); err != nil {
		return nil, err
	}
	return d.Stats(), nil
}

type errUnknownControl string

func (e errUnknownControl) Error() string {
	return "no control endpoint " + string(e) + "; see GET /_emulator/stats, GET|POST /_emulator/faults, POST /_emulator/reset, /_emulator/seed, /_emulator/generate, GET /_emulator/keys, POST /_emulator/keys/rotate"
}
