package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Codes of the JetStream API errors that mean "no room to store": the
// server's or the account's storage is used up.
var noRoomCodes = map[jetstream.ErrorCode]bool{
	10002: true, // JSAccountResourcesExceededErr: resource limits exceeded for account
	10023: true, // JSInsufficientResourcesErr: insufficient resources
	10028: true, // JSMemoryResourcesExceededErr
	10047: true, // JSStorageResourcesExceededErr
}

// isNoRoom reports whether a publish failed because JetStream has no room
// for the message, rather than being slow or unreachable.
func isNoRoom(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	if noRoomCodes[apiErr.ErrorCode] {
		return true
	}
	d := strings.ToLower(apiErr.Description)
	return apiErr.ErrorCode == 10077 && // JSStreamStoreFailedF: the store's own error
		(strings.Contains(d, "maximum bytes") || strings.Contains(d, "maximum messages") || strings.Contains(d, "no space left"))
}

// storeState remembers that JetStream refused events for lack of room.
type storeState struct {
	mu       sync.Mutex
	since    time.Time // zero: not known to be full
	reason   string
	baseline int64 // storage the account used when readiness first saw it full; -1 unknown
}

func (st *storeState) full(now time.Time, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.since.IsZero() {
		st.baseline = -1
	}
	st.since, st.reason = now, err.Error()
}

func (st *storeState) clear() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.since = time.Time{}
}

// Ready is ingest's readiness check (the admin server's /readyz): it fails
// while ingest cannot accept work because JetStream has no room for events,
// which a publish that failed for that reason tells. It passes again as soon
// as a publish succeeds, when the account's storage use drops below what it
// was when the store was found full (messages aged out, a stream purged),
// or after ingest.retry_after, so that the next delivery tests the store
// again (the state of a limit raised on the server is not visible to a
// client).
func (s *Service) Ready(ctx context.Context) error {
	st := &s.store
	st.mu.Lock()
	since, reason, baseline := st.since, st.reason, st.baseline
	st.mu.Unlock()
	if since.IsZero() || time.Since(since) >= s.cfg.RetryAfter {
		return nil
	}
	if info, err := s.bus.JetStream().AccountInfo(ctx); err == nil {
		used := int64(info.Tier.Store + info.Tier.Memory)
		st.mu.Lock()
		switch {
		case st.since != since: // changed meanwhile; judge again next time
		case baseline < 0:
			st.baseline = used
		case used < baseline:
			st.since = time.Time{}
			st.mu.Unlock()
			return nil
		}
		st.mu.Unlock()
	}
	return fmt.Errorf("JetStream has no room for events (%s, %s ago): every delivery is answered 503 until storage is freed or its limit raised",
		reason, time.Since(since).Round(time.Second))
}
