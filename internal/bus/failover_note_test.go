package bus

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// An episode opens on the first request that meets cluster trouble and
// ends when that request succeeds again; other requests' successes, which
// skip the lock while nothing fails, do not end it.
func TestNoteEndsTheEpisodeOnTheFirstRequestsSuccess(t *testing.T) {
	f := &failover{wake: make(chan struct{}, 1)}
	f.note(reqPublish, StreamEvents, nil)
	if f.open.Load() || f.ep != nil {
		t.Fatal("a success opened an episode")
	}
	f.note(reqPublish, StreamEvents, nats.ErrTimeout)
	if !f.open.Load() || f.ep == nil {
		t.Fatal("a timeout did not open an episode")
	}
	f.note(reqPublish, StreamAudit, nil)
	f.note(reqFetch, StreamEvents, nil)
	if !f.open.Load() || f.ep == nil {
		t.Fatal("another request's success ended the episode")
	}
	f.note(reqPublish, StreamEvents, nil)
	if f.open.Load() || f.ep != nil {
		t.Fatal("the first request's success did not end the episode")
	}
}
