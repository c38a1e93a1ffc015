package identitydomain

import (
	"maps"
	"sync"
)

// Stats is a snapshot of what the domain holds and has done.
type Stats struct {
	Users       int `json:"users"`
	Groups      int `json:"groups"`
	Memberships int `json:"memberships"`
	// Calls counts requests by operation, whatever their outcome (faults,
	// 401s and 429s included).
	// The operations of a Bulk request are counted under their own
	// operation as well as in BulkOperations: HTTP requests are the sum of
	// Calls less BulkOperations.
	Calls map[Operation]int64 `json:"calls"`
	// BulkOperations counts the operations run inside Bulk requests.
	BulkOperations int64 `json:"bulkOperations"`
	// RateLimited counts requests refused by the tier's rate limit.
	RateLimited int64 `json:"rateLimited"`
	// Faults counts requests answered by an injected fault or an outage.
	Faults int64 `json:"faults"`
	// Events describes emitted events and their delivery.
	Events EventStats `json:"events"`
}

// EventStats counts emitted events and their delivery to the webhook.
type EventStats struct {
	// Emitted counts events the domain produced (hooks see all of them).
	Emitted int64 `json:"emitted"`
	// Delivered counts successful deliveries (a duplicated event counts twice).
	Delivered int64 `json:"delivered"`
	// Pending counts deliveries queued or being retried.
	Pending int64 `json:"pending"`
	// Failed counts failed delivery attempts (each is retried).
	Failed int64 `json:"failed"`
	// Dropped counts events dropped by the DropEvents fault.
	Dropped int64 `json:"dropped"`
	// Duplicated counts events queued twice by the DuplicateEvents fault.
	Duplicated int64 `json:"duplicated"`
	// GaveUp counts deliveries dropped after Faults.GiveUpAfter failed attempts.
	GaveUp int64 `json:"gaveUp"`
}

type callStats struct {
	mu          sync.Mutex
	calls       map[Operation]int64
	bulkOps     int64
	rateLimits  int64
	faultsCount int64
}

func newCallStats() *callStats { return &callStats{calls: map[Operation]int64{}} }

func (s *callStats) count(op Operation) {
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
}

func (s *callStats) bulkOperation(op Operation) {
	s.mu.Lock()
	s.calls[op]++
	s.bulkOps++
	s.mu.Unlock()
}

func (s *callStats) rateLimited() {
	s.mu.Lock()
	s.rateLimits++
	s.mu.Unlock()
}

func (s *callStats) fault() {
	s.mu.Lock()
	s.faultsCount++
	s.mu.Unlock()
}

func (s *callStats) reset() {
	s.mu.Lock()
	s.calls = map[Operation]int64{}
	s.rateLimits, s.faultsCount, s.bulkOps = 0, 0, 0
	s.mu.Unlock()
}

// CallCount returns how many requests for op the domain has received.
func (d *Domain) CallCount(op Operation) int64 {
	d.stats.mu.Lock()
	defer d.stats.mu.Unlock()
	return d.stats.calls[op]
}

// Stats returns a snapshot of the domain's counters.
func (d *Domain) Stats() Stats {
	d.store.mu.RLock()
	st := Stats{Users: len(d.store.users.byID), Groups: len(d.store.groups.byID), Memberships: d.store.memberships}
	d.store.mu.RUnlock()
	d.stats.mu.Lock()
	st.Calls = maps.Clone(d.stats.calls)
	st.RateLimited, st.Faults, st.BulkOperations = d.stats.rateLimits, d.stats.faultsCount, d.stats.bulkOps
	d.stats.mu.Unlock()
	st.Events = d.events.stats()
	return st
}

// EventStats returns the event counters.
func (d *Domain) EventStats() EventStats { return d.events.stats() }
