package replicator

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/servicekit"
)

func TestResultOf(t *testing.T) {
	wrap := func(k identitydomain.Kind) error {
		return fmt.Errorf("create_user user %q in tgt: %w", "x", &identitydomain.Error{Kind: k, Op: "CreateUser", Domain: "tgt"})
	}
	for _, tc := range []struct {
		name string
		err  error
		want string // done, retry, terminal
	}{
		{"ok", nil, "done"},
		{"nothing to do", fmt.Errorf("%w: user.capabilities_changed", errUnsupported), "done"},
		{"rate limited", wrap(identitydomain.KindRateLimited), "retry"},
		{"unavailable", wrap(identitydomain.KindUnavailable), "retry"},
		{"circuit open", fmt.Errorf("x: %w", identitydomain.ErrCircuitOpen), "retry"},
		{"gone since read", wrap(identitydomain.KindNotFound), "retry"},
		{"changed since read", wrap(identitydomain.KindPreconditionFailed), "retry"},
		{"created concurrently", wrap(identitydomain.KindConflict), "retry"},
		{"bad request", wrap(identitydomain.KindInvalidRequest), "terminal"},
		{"forbidden", wrap(identitydomain.KindForbidden), "terminal"},
		{"unauthorized", wrap(identitydomain.KindUnauthorized), "terminal"},
		{"listing paged wrongly", wrap(identitydomain.KindInconsistentRead), "retry"},
		{"id map down", errors.New("replicator: read mapping: nats: timeout"), "retry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := resultOf(tc.err)
			got := "retry"
			switch {
			case r.IsDone():
				got = "done"
			case r.IsTerminal():
				got = "terminal"
			}
			if got != tc.want {
				t.Errorf("resultOf(%v) = %s, want %s", tc.err, r, tc.want)
			}
		})
	}
}

// A link naming a domain with no client is refused with the domain's name.
func TestNewNeedsEveryLinkedDomain(t *testing.T) {
	p := newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{noRun: true})
	_, err := New(t.Context(), p.cfg, p.bus, map[string]Domain{"src": p.sites["src"].client}, servicekit.WithClock(time.Now))
	if err == nil || err.Error() != "replicator: no client for domain(s) [tgt]: give each linked domain url, client_id and client_secret" {
		t.Fatalf("New without the target's client: %v", err)
	}
}
