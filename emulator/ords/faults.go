package ords

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/iamflow/iamflow/emulator/internal/jsonduration"
)

// Faults are failures a database injects on demand, set in Database.Faults,
// with SetFaults, or at POST /_emulator/faults. They apply to
// /ords/<alias>/... (never to /_emulator/). ErrorRate is drawn from a
// generator seeded with Seed, so the same Seed and requests give the same
// faults.
type Faults struct {
	// Latency is how long every /_/sql request holds its pool connection
	// before its statements run (so it also makes the pool run out).
	Latency time.Duration `json:"latency,omitempty" yaml:"latency,omitempty"`
	// ErrorRate answers that share of /_/sql and token requests HTTP 503,
	// before authentication; nothing runs.
	ErrorRate float64 `json:"errorRate,omitempty" yaml:"errorRate,omitempty"`
	// BusyNext makes the next BusyNext statements (of any kind) fail with
	// ORA-00054 without running; it counts down as they do.
	BusyNext int `json:"busyNext,omitempty" yaml:"busyNext,omitempty"`
	// Outage answers every request for the database HTTP 503.
	Outage bool `json:"outage,omitempty" yaml:"outage,omitempty"`
	// Seed seeds the ErrorRate generator.
	Seed uint64 `json:"seed,omitempty" yaml:"seed,omitempty"`
}

func (f Faults) validate() error {
	var errs []error
	if f.ErrorRate < 0 || f.ErrorRate > 1 {
		errs = append(errs, fmt.Errorf("errorRate %v: want a rate in [0, 1]", f.ErrorRate))
	}
	if f.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %v: must not be negative", f.Latency))
	}
	if f.BusyNext < 0 {
		errs = append(errs, fmt.Errorf("busyNext %d: must not be negative", f.BusyNext))
	}
	return errors.Join(errs...)
}

// MarshalJSON writes Latency as a Go duration string.
func (f Faults) MarshalJSON() ([]byte, error) {
	type plain Faults
	return json.Marshal(struct {
		plain
		Latency string `json:"latency,omitempty"`
	}{plain(f), jsonduration.Format(f.Latency)})
}

// UnmarshalJSON reads Latency as a Go duration string ("250ms") or
// nanoseconds; fields absent from the JSON keep their current values.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	aux := struct {
		*plain
		Latency json.RawMessage `json:"latency,omitempty"`
	}{plain: (*plain)(f)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if err := jsonduration.Parse(aux.Latency, &f.Latency); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	return nil
}
