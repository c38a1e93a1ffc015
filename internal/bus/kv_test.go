package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
)

// A lost compare-and-set is recognised in every form the server sends it,
// wrapped or not; other errors are not.
func TestIsWrongRevision(t *testing.T) {
	kv := bustest.KV(t, jetstream.KeyValueConfig{Bucket: "cas_test"})
	ctx := context.Background()
	rev, err := kv.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "k", []byte("2"), rev); err != nil {
		t.Fatal(err)
	}
	_, stale := kv.Update(ctx, "k", []byte("3"), rev)
	_, exists := kv.Create(ctx, "k", []byte("4"))
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"an update at an old revision": {stale, true},
		"a create of an existing key":  {exists, true},
		"wrapped":                      {fmt.Errorf("store grant: %w", stale), true},
		"a replicated bucket's answer": {&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}, true},
		"another API error":            {&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamNotFound}, false},
		"not found":                    {jetstream.ErrKeyNotFound, false},
		"anything else":                {errors.New("timeout"), false},
		"nil":                          {nil, false},
	} {
		if got := bus.IsWrongRevision(tc.err); got != tc.want {
			t.Errorf("%s (%v): %v, want %v", name, tc.err, got, tc.want)
		}
	}
}
