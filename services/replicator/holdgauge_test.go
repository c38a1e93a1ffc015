package replicator

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// The held-deletions gauge counts what waits per link and target, 0 for a
// direction with nothing held, and the age of the oldest hold.
func TestHoldGauge(t *testing.T) {
	c := newClock()
	g := newGuard(c.now)
	dirs := []*direction{{link: planner.Link{Name: "l"}, target: "spoke"}, {link: planner.Link{Name: "l"}, target: "other"}}
	reg := prometheus.NewRegistry()
	if err := registerHoldGauge(reg, holdGauge{guard: g, dirs: dirs, now: c.now}); err != nil {
		t.Fatal(err)
	}
	check(t, g, deletions(5), 100) // over max_deletions 3: all five held
	c.advance(90 * time.Second)
	if n := (gaugeOf(t, reg, "iamflow_replicator_held_deletions", "spoke")); n != 5 {
		t.Errorf("held deletions of spoke = %v, want 5", n)
	}
	if n := (gaugeOf(t, reg, "iamflow_replicator_held_deletions", "other")); n != 0 {
		t.Errorf("held deletions of other = %v, want 0", n)
	}
	if age := (gaugeOf(t, reg, "iamflow_replicator_oldest_hold_age_seconds", "spoke")); age != 90 {
		t.Errorf("oldest hold age = %v, want 90", age)
	}
}

// gaugeOf is the value of the one series of name with target in reg.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name, target string) float64 {
	t.Helper()
	v, ok := testutil.Metric(t, reg, name, map[string]string{"target": target})
	if !ok {
		t.Fatalf("no %s{target=%q}", name, target)
	}
	return v
}
