package identitydomain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/iamflow/iamflow/emulator/internal/jsonduration"
)

// Faults are failures the domain injects on demand. They apply to
// /oauth2/v1/token and /admin/v1/* (never to /_emulator/). Rates are
// probabilities in [0, 1], drawn from a generator seeded with Seed, so the
// same Seed and the same sequence of requests give the same faults.
type Faults struct {
	// Latency is added before every request is handled.
	Latency time.Duration `json:"latency,omitempty" yaml:"latency,omitempty"`
	// Rate429 answers that share of requests 429 before handling them.
	Rate429 float64 `json:"rate429,omitempty" yaml:"rate429,omitempty"`
	// Rate5xx answers that share of requests Status5xx before handling them.
	Rate5xx float64 `json:"rate5xx,omitempty" yaml:"rate5xx,omitempty"`
	// RateLostResponse makes that share of successful writes (POST, PUT, PATCH,
	// DELETE) take effect, events included, but answers Status5xx instead of
	// the result, as when a response is lost on the way back.
	RateLostResponse float64 `json:"rateLostResponse,omitempty" yaml:"rateLostResponse,omitempty"`
	// Status5xx is the status of injected server errors. Default: 500.
	Status5xx int `json:"status5xx,omitempty" yaml:"status5xx,omitempty"`
	// RetryAfter, when positive, adds Retry-After (whole seconds, rounded up)
	// to every 429, injected or from the rate limit. The real service is not
	// known to send one, so the default is none.
	RetryAfter time.Duration `json:"retryAfter,omitempty" yaml:"retryAfter,omitempty"`
	// Outage answers 503 to everything.
	Outage bool `json:"outage,omitempty" yaml:"outage,omitempty"`
	// DropEvents is the share of emitted events never delivered to the webhook.
	DropEvents float64 `json:"dropEvents,omitempty" yaml:"dropEvents,omitempty"`
	// DuplicateEvents is the share of emitted events delivered twice.
	DuplicateEvents float64 `json:"duplicateEvents,omitempty" yaml:"duplicateEvents,omitempty"`
	// GiveUpAfter drops a webhook delivery after that many failed attempts,
	// as OCI Notifications discards a message at the end of its retry
	// window (giveup.go); 0 retries until delivered.
	GiveUpAfter int `json:"giveUpAfter,omitempty" yaml:"giveUpAfter,omitempty"`
	// Seed seeds the fault generator; changing faults re-seeds it.
	Seed uint64 `json:"seed,omitempty" yaml:"seed,omitempty"`
}

func (f Faults) validate() error {
	var errs []error
	for name, r := range map[string]float64{
		"rate429": f.Rate429, "rate5xx": f.Rate5xx, "rateLostResponse": f.RateLostResponse,
		"dropEvents": f.DropEvents, "duplicateEvents": f.DuplicateEvents,
	} {
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("%s %v: want a rate in [0, 1]", name, r))
		}
	}
	if f.GiveUpAfter < 0 {
		errs = append(errs, fmt.Errorf("giveUpAfter %d: want a number of attempts, or 0 to retry until delivered", f.GiveUpAfter))
	}
	if f.Latency < 0 || f.RetryAfter < 0 {
		errs = append(errs, errors.New("latency and retryAfter must not be negative"))
	}
	if f.Status5xx != 0 && (f.Status5xx < 500 || f.Status5xx > 599) {
		errs = append(errs, fmt.Errorf("status5xx %d: want 500-599", f.Status5xx))
	}
	return errors.Join(errs...)
}

func (f Faults) withDefaults() Faults {
	if f.Status5xx == 0 {
		f.Status5xx = http.StatusInternalServerError
	}
	return f
}

type faultKind int

const (
	faultNone faultKind = iota
	fault429
	fault5xx
)

type faultState struct {
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func newFaultState(f Faults) *faultState {
	s := &faultState{}
	s.set(f)
	return s
}

func (s *faultState) set(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f = f.withDefaults()
	s.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x5851f42d4c957f2d))
}

func (s *faultState) get() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

func (s *faultState) hit(rate float64) bool {
	return rate > 0 && s.rng.Float64() < rate
}

// draw decides whether this request gets an injected 429 or 5xx.
func (s *faultState) draw() faultKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.hit(s.f.Rate429):
		return fault429
	case s.hit(s.f.Rate5xx):
		return fault5xx
	}
	return faultNone
}

// eventFate decides whether an emitted event is dropped or duplicated.
func (s *faultState) eventFate() (drop, dup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hit(s.f.DropEvents) {
		return true, false
	}
	return false, s.hit(s.f.DuplicateEvents)
}

// SetFaults replaces the active faults.
func (d *Domain) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("identitydomain: set faults: %w", err)
	}
	d.faults.set(f)
	return nil
}

// Faults returns the active faults.
func (d *Domain) Faults() Faults { return d.faults.get() }

// responseWriter is the writer handlers get: either the real one, or one that
// holds the response back so a lost-response fault can replace it.
type responseWriter struct {
	http.ResponseWriter
	lose      bool
	status    int
	buf       bytes.Buffer
	hdr       http.Header
	status5xx int
}

// Header, WriteHeader and Write implement http.ResponseWriter.
func (w *responseWriter) Header() http.Header {
	if w.lose {
		return w.hdr
	}
	return w.ResponseWriter.Header()
}

func (w *responseWriter) WriteHeader(status int) {
	if !w.lose {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	if w.status == 0 {
		w.status = status
	}
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.lose {
		return w.ResponseWriter.Write(b)
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.Write(b)
}

// finish sends what a lost-response writer held back, or the injected error
// when the write succeeded.
func (w *responseWriter) finish() {
	if !w.lose {
		return
	}
	if w.status >= 200 && w.status < 300 {
		writeError(w.ResponseWriter, errorf(w.status5xx, "", "error.common.common.internalServerError",
			"Injected fault: HTTP %d after the change was made.", w.status5xx))
		return
	}
	for k, v := range w.hdr {
		w.ResponseWriter.Header()[k] = v
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(w.buf.Bytes())
}

func (s *faultState) maybeLoseResponse(w http.ResponseWriter, r *http.Request) *responseWriter {
	rw := &responseWriter{ResponseWriter: w}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return rw
	}
	if len(r.URL.Path) > 8 && r.URL.Path[len(r.URL.Path)-8:] == "/.search" {
		return rw
	}
	s.mu.Lock()
	lose := s.hit(s.f.RateLostResponse)
	status := s.f.Status5xx
	s.mu.Unlock()
	if lose {
		rw.lose, rw.hdr, rw.status5xx = true, http.Header{}, status
	}
	return rw
}

// MarshalJSON writes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	type plain Faults
	return json.Marshal(struct {
		plain
		Latency    string `json:"latency,omitempty"`
		RetryAfter string `json:"retryAfter,omitempty"`
	}{plain(f), jsonduration.Format(f.Latency), jsonduration.Format(f.RetryAfter)})
}

// UnmarshalJSON reads durations as Go duration strings or nanoseconds; fields
// absent from the JSON keep their current values.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	aux := struct {
		*plain
		Latency    json.RawMessage `json:"latency,omitempty"`
		RetryAfter json.RawMessage `json:"retryAfter,omitempty"`
	}{plain: (*plain)(f)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if err := jsonduration.Parse(aux.Latency, &f.Latency); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	if err := jsonduration.Parse(aux.RetryAfter, &f.RetryAfter); err != nil {
		return fmt.Errorf("retryAfter: %w", err)
	}
	return nil
}
