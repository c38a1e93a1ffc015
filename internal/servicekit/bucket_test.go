package servicekit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus/bustest"
)

// A bucket keeps one value per key, is placed as the bus places its
// streams, keeps what cfg says (a TTL), and an error names its owner.
func TestOpenBucket(t *testing.T) {
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	ctx := context.Background()
	kv, err := OpenBucket(ctx, b, "svc", jetstream.KeyValueConfig{Bucket: "svc_state", Description: "d", History: 5, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	storage, replicas := b.Placement()
	cfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
	if st.History() != 1 || st.TTL() != time.Hour || cfg.Storage != storage || cfg.Replicas != replicas || cfg.Description != "d" {
		t.Fatalf("bucket history %d, ttl %v, storage %v, replicas %d, description %q", st.History(), st.TTL(), cfg.Storage, cfg.Replicas, cfg.Description)
	}
	if _, err := OpenBucket(ctx, b, "svc", jetstream.KeyValueConfig{Bucket: "no spaces"}); err == nil ||
		!strings.HasPrefix(err.Error(), "svc: create bucket no spaces: ") {
		t.Fatalf("bad bucket: %v", err)
	}
}
