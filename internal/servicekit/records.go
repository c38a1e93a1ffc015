package servicekit

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
)

// ErrConflict is a compare-and-set that lost: the record changed since it
// was read. The caller reads it again and decides anew.
var ErrConflict = errors.New("changed since it was read")

// Records is a KV bucket's records of one kind, each under a key made from
// its id and changed by compare-and-set on the revision it was read at.
// Errors name the kind and the id.
type Records[T any] struct {
	// KV is the bucket (OpenBucket).
	KV jetstream.KeyValue
	// Kind names a record in errors: "grant", "access request".
	Kind string
	// Key is the key of the record with that id.
	Key func(id string) string
	// Encode and Decode turn a record into a value and back.
	Encode func(T) ([]byte, error)
	Decode func([]byte) (T, error)
}

// Get returns the record with that id and its revision; an error that
// wraps jetstream.ErrKeyNotFound when there is none.
func (r Records[T]) Get(ctx context.Context, id string) (T, uint64, error) {
	var zero T
	e, err := r.KV.Get(ctx, r.Key(id))
	if err != nil {
		return zero, 0, fmt.Errorf("read %s %s: %w", r.Kind, id, err)
	}
	v, err := r.Decode(e.Value())
	if err != nil {
		return zero, 0, fmt.Errorf("decode %s %s: %w", r.Kind, id, err)
	}
	return v, e.Revision(), nil
}

// Create stores a new record; it fails if one with that id exists.
func (r Records[T]) Create(ctx context.Context, id string, v T) (uint64, error) {
	b, err := r.Encode(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s %s: %w", r.Kind, id, err)
	}
	rev, err := r.KV.Create(ctx, r.Key(id), b)
	if err != nil {
		return 0, fmt.Errorf("store %s %s: %w", r.Kind, id, err)
	}
	return rev, nil
}

// Update stores v if the record is still at revision rev, and returns its
// new revision; ErrConflict if it is not.
func (r Records[T]) Update(ctx context.Context, id string, v T, rev uint64) (uint64, error) {
	b, err := r.Encode(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s %s: %w", r.Kind, id, err)
	}
	n, err := r.KV.Update(ctx, r.Key(id), b, rev)
	if bus.IsWrongRevision(err) {
		return 0, fmt.Errorf("update %s %s: %w", r.Kind, id, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("update %s %s: %w", r.Kind, id, err)
	}
	return n, nil
}
