package servicekit

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
)

// OpenBucket creates (or updates) a KV bucket that owner (a service, or a
// part of one) keeps its state in: cfg with one value per key (History 1)
// placed as b places its streams (storage and replicas). The error names
// owner and the bucket.
func OpenBucket(ctx context.Context, b *bus.Bus, owner string, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.History = 1
	cfg.Storage, cfg.Replicas = b.Placement()
	kv, err := b.JetStream().CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: create bucket %s: %w", owner, cfg.Bucket, err)
	}
	return kv, nil
}
