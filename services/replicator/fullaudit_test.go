package replicator

import (
	"context"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// heldGroups is a target whose group listing waits until release is
// closed: a full reconcile stopped after its users pass.
type heldGroups struct {
	domainClient
	release chan struct{}
}

// domainClient is Domain under a name that does not hide Domain.Domain.
type domainClient = Domain

func (h heldGroups) Groups(ctx context.Context, opts identitydomain.ListOptions) iter.Seq2[identitydomains.Group, error] {
	return func(yield func(identitydomains.Group, error) bool) {
		select {
		case <-h.release:
		case <-ctx.Done():
			yield(identitydomains.Group{}, ctx.Err())
			return
		}
		for g, err := range h.domainClient.Groups(ctx, opts) {
			if !yield(g, err) {
				return
			}
		}
	}
}

// A full reconcile stores the audit records of what it did as it goes, not
// when it ends: a process killed in the middle of a long reconcile keeps
// the records of the changes made before (the proof's SIGKILL of the
// replicator found a create in the target without its record).
func TestFullReconcileStoresRecordsAsItGoes(t *testing.T) {
	cfg := config(link("hub", "src", "tgt"))
	p := newPipeline(t, cfg, pipelineOpts{noRun: true})
	src, tgt := p.sites["src"], p.sites["tgt"]
	const users = 5
	for i := range users {
		src.createUser(t, fmt.Sprintf("rec%02d", i), fmt.Sprintf("Rec %d", i))
	}
	release := make(chan struct{})
	ctx := context.Background()
	svc, err := New(ctx, p.cfg, p.bus, map[string]Domain{"src": src.client, "tgt": heldGroups{tgt.client, release}},
		servicekit.WithLogger(pipelinetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := svc.ReconcileLink(ctx, "hub", false)
		done <- err
	}()
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		n := 0
		for _, r := range auditRecords(t, p.bus) {
			if r.GetAction() == string(planner.ActCreateUser) && r.GetOutcome() == "applied" {
				n++
			}
		}
		if n < users {
			return fmt.Errorf("%d of %d create records stored while the reconcile is still running", n, users)
		}
		return nil
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
