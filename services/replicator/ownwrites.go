package replicator

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/services/replicator/planner"
)

// writesBucket is the JetStream KV bucket where the replicator remembers
// what it wrote.
const writesBucket = "iamflow_replicator_writes"

// writesMaxAge is how long a write is remembered: the echo of a write comes
// back as an event within OCI's delivery window (Notifications retries for
// two hours), with room to spare.
const writesMaxAge = 24 * time.Hour

// ownWrites remembers, per link, domain and object, the fingerprint of the
// state the replicator left the object in. An event about an object whose
// current state is exactly what the replicator wrote there is the echo of
// that write: the reverse direction of a bidirectional link has nothing to
// copy back. Any other change, whoever made it (a person, another part of
// iamflow, anyone using iamflow's OAuth client), is a real change.
type ownWrites struct{ kv jetstream.KeyValue }

func openOwnWrites(ctx context.Context, js jetstream.JetStream, pl Placement) (*ownWrites, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: writesBucket, Description: "iamflow replicator: fingerprints of the states it wrote, for echo suppression",
		History: 1, TTL: writesMaxAge, Storage: pl.Storage, Replicas: pl.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("replicator: create bucket %s: %w", writesBucket, err)
	}
	return &ownWrites{kv: kv}, nil
}

func writeKey(link, domain string, k planner.Kind, id string) string {
	return link + "." + domain + "." + string(k) + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// record remembers that the object now holds the state with fingerprint fp.
func (w *ownWrites) record(ctx context.Context, link, domain string, k planner.Kind, id, fp string) error {
	if id == "" || fp == "" {
		return nil
	}
	if _, err := w.kv.Put(ctx, writeKey(link, domain, k, id), []byte(fp)); err != nil {
		return fmt.Errorf("replicator: remember write of %s %s in %s: %w", k, id, domain, err)
	}
	return nil
}

// is reports whether the object's state, fingerprint fp, is the one the
// replicator wrote last.
func (w *ownWrites) is(ctx context.Context, link, domain string, k planner.Kind, id, fp string) (bool, error) {
	e, err := w.kv.Get(ctx, writeKey(link, domain, k, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("replicator: read own write of %s %s in %s: %w", k, id, domain, err)
	}
	return string(e.Value()) == fp, nil
}
