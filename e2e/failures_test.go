//go:build linux

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// proofT is the *testing.T of a proof that repeats, once the test has
// ended and the processes' last log lines are printed, every reason it
// failed for: a CI shows only the end of a long output, and the reasons
// would otherwise be hundreds of lines above it.
type proofT struct {
	*testing.T
	mu  sync.Mutex
	why []string
}

// startProof starts a proof: it records t's failures (recordFailures), and
// in -short mode skips the test, saying with long how long it takes and how
// to run it.
func startProof(t *testing.T, long string) *proofT {
	t.Helper()
	p := recordFailures(t)
	if testing.Short() {
		t.Skip(long)
	}
	return p
}

// recordFailures wraps t. Its cleanup is registered first, so it runs last.
func recordFailures(t *testing.T) *proofT {
	p := &proofT{T: t}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !t.Failed() || len(p.why) == 0 {
			return
		}
		var b strings.Builder
		for i, w := range p.why {
			if i == 20 {
				fmt.Fprintf(&b, "  ... and %d more (above)\n", len(p.why)-i)
				break
			}
			first, _, more := strings.Cut(w, "\n")
			if more {
				first += " [...]"
			}
			fmt.Fprintf(&b, "  %d. %s\n", i+1, first)
		}
		t.Logf("%s failed, %d reasons (in full above):\n%s", t.Name(), len(p.why), b.String())
	})
	return p
}

func (p *proofT) note(s string) {
	p.mu.Lock()
	p.why = append(p.why, s)
	p.mu.Unlock()
}

// Errorf records the reason and fails the test.
func (p *proofT) Errorf(format string, args ...any) {
	p.Helper()
	p.note(fmt.Sprintf(format, args...))
	p.T.Errorf(format, args...)
}

// Error records the reason and fails the test.
func (p *proofT) Error(args ...any) {
	p.Helper()
	p.note(fmt.Sprint(args...))
	p.T.Error(args...)
}

// Fatalf records the reason and stops the test.
func (p *proofT) Fatalf(format string, args ...any) {
	p.Helper()
	p.note(fmt.Sprintf(format, args...))
	p.T.Fatalf(format, args...)
}

// Fatal records the reason and stops the test.
func (p *proofT) Fatal(args ...any) {
	p.Helper()
	p.note(fmt.Sprint(args...))
	p.T.Fatal(args...)
}
