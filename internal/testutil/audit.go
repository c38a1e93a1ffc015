package testutil

import (
	"context"
	"slices"
	"sync"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// Auditor keeps the audit records a service stores, for a test to read
// (servicekit.WithAuditWriter takes it). It is safe for concurrent use.
type Auditor struct {
	mu   sync.Mutex
	recs []*iamflowv1.AuditRecord
}

// Record keeps r.
func (a *Auditor) Record(_ context.Context, r *iamflowv1.AuditRecord) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return nil
}

// Records are the records kept so far, in the order they were stored.
func (a *Auditor) Records() []*iamflowv1.AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.recs)
}
