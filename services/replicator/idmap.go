package replicator

import (
	"github.com/iamflow/iamflow/services/replicator/planner"

	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultIDBucket is the JetStream KV bucket of id mappings.
const DefaultIDBucket = "iamflow_replicator_ids"

// Scope names one direction of one link for one kind of object.
type Scope struct {
	Link   string
	Source string
	Target string
	Kind   planner.Kind
}

// Reverse is the scope of the opposite direction.
func (s Scope) Reverse() Scope {
	return Scope{Link: s.Link, Source: s.Target, Target: s.Source, Kind: s.Kind}
}

// String renders the scope as link/source->target/kind.
func (s Scope) String() string {
	return fmt.Sprintf("%s/%s->%s/%s", s.Link, s.Source, s.Target, s.Kind)
}

// IDMap stores mappings in a JetStream KV bucket. Put writes each mapping
// in both directions (key of scope and source id, and key of the reversed
// scope and target id), so a bidirectional link, and the question "did
// iamflow create or adopt this target object?", are one Get.
//
// Keys: <link>.<source>.<target>.<kind>.<base64url(id)>; link and domain
// names are validated to be key-safe, ids are encoded.
type IDMap struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// Placement is where a bucket's data lives: the storage and replica count
// of iamflow's streams (bus.Bus.Placement), so state follows nats.streams.
// The zero value is file storage, one replica.
type Placement struct {
	Storage  jetstream.StorageType
	Replicas int
}

// OpenIDMap creates (or updates) the bucket and returns the map. now stamps
// Mapping.Updated (nil: time.Now).
func OpenIDMap(ctx context.Context, js jetstream.JetStream, bucket string, pl Placement, now func() time.Time) (*IDMap, error) {
	if bucket == "" {
		bucket = DefaultIDBucket
	}
	if now == nil {
		now = time.Now
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Description: "iamflow replicator: source id -> target id per link, direction and kind",
		History: 1, Storage: pl.Storage, Replicas: pl.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("replicator: create bucket %s: %w", bucket, err)
	}
	return &IDMap{kv: kv, now: now}, nil
}

// key is the KV key of id in scope s.
func (s Scope) key(id string) string {
	return s.Link + "." + s.Source + "." + s.Target + "." + string(s.Kind) + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func (s Scope) check(id string) error {
	if s.Link == "" || s.Source == "" || s.Target == "" || (s.Kind != planner.KindUser && s.Kind != planner.KindGroup) || id == "" {
		return fmt.Errorf("replicator: incomplete id-map key %s id %q", s, id)
	}
	return nil
}

// Get returns the mapping of sourceID in s; found is false when there is none.
func (m *IDMap) Get(ctx context.Context, s Scope, sourceID string) (mp planner.Mapping, found bool, err error) {
	if err := s.check(sourceID); err != nil {
		return planner.Mapping{}, false, err
	}
	e, err := m.kv.Get(ctx, s.key(sourceID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return planner.Mapping{}, false, nil
	}
	if err != nil {
		return planner.Mapping{}, false, fmt.Errorf("replicator: read mapping %s %s: %w", s, sourceID, err)
	}
	if err := json.Unmarshal(e.Value(), &mp); err != nil {
		return planner.Mapping{}, false, fmt.Errorf("replicator: decode mapping %s %s: %w", s, sourceID, err)
	}
	return mp, true, nil
}

// Put records mp in s and its reverse in s.Reverse(). A previous mapping of
// the same source id to another target id loses its reverse entry.
func (m *IDMap) Put(ctx context.Context, s Scope, mp planner.Mapping) error {
	if err := s.check(mp.SourceID); err != nil {
		return err
	}
	if err := s.check(mp.TargetID); err != nil {
		return err
	}
	if mp.Origin != planner.OriginCreated && mp.Origin != planner.OriginAdopted {
		return fmt.Errorf("replicator: mapping %s %s: origin %q; use %q or %q", s, mp.SourceID, mp.Origin, planner.OriginCreated, planner.OriginAdopted)
	}
	old, found, err := m.Get(ctx, s, mp.SourceID)
	if err != nil {
		return err
	}
	if found && old.TargetID != mp.TargetID {
		if err := m.del(ctx, s.Reverse(), old.TargetID); err != nil {
			return err
		}
	}
	// One target object is the copy of one source object: another source
	// object mapped to it (deleted and re-created under the same name, the
	// new one adopting the copy) loses its mapping.
	prev, found, err := m.Get(ctx, s.Reverse(), mp.TargetID)
	if err != nil {
		return err
	}
	if found && prev.Reverse && prev.TargetID != mp.SourceID {
		if err := m.del(ctx, s, prev.TargetID); err != nil {
			return err
		}
	}
	mp.Updated = m.now().UTC()
	mp.Reverse = false
	rev := planner.Mapping{SourceID: mp.TargetID, TargetID: mp.SourceID, Origin: mp.Origin, Reverse: true, Updated: mp.Updated}
	if err := m.put(ctx, s, mp); err != nil {
		return err
	}
	return m.put(ctx, s.Reverse(), rev)
}

// ManagedTarget reports whether iamflow created or adopted targetID in
// s.Target under s (one read of the reverse entry); it fills
// MembersInput.ManagedTargetUsers.
func (m *IDMap) ManagedTarget(ctx context.Context, s Scope, targetID string) (bool, error) {
	rev, found, err := m.Get(ctx, s.Reverse(), targetID)
	if err != nil || !found {
		return false, err
	}
	return rev.Reverse && (rev.Origin == planner.OriginCreated || rev.Origin == planner.OriginAdopted), nil
}

// Delete forgets the mapping of sourceID in s and its reverse; forgetting
// what is not there is not an error.
func (m *IDMap) Delete(ctx context.Context, s Scope, sourceID string) error {
	old, found, err := m.Get(ctx, s, sourceID)
	if err != nil || !found {
		return err
	}
	if err := m.del(ctx, s.Reverse(), old.TargetID); err != nil {
		return err
	}
	return m.del(ctx, s, sourceID)
}

func (m *IDMap) put(ctx context.Context, s Scope, mp planner.Mapping) error {
	b, err := json.Marshal(mp)
	if err != nil {
		return fmt.Errorf("replicator: encode mapping %s %s: %w", s, mp.SourceID, err)
	}
	if _, err := m.kv.Put(ctx, s.key(mp.SourceID), b); err != nil {
		return fmt.Errorf("replicator: write mapping %s %s: %w", s, mp.SourceID, err)
	}
	return nil
}

func (m *IDMap) del(ctx context.Context, s Scope, id string) error {
	if err := m.kv.Delete(ctx, s.key(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("replicator: delete mapping %s %s: %w", s, id, err)
	}
	return nil
}

// SourceIDs calls fn with every source id mapped in s (forward entries
// only), in key order, without loading the mappings themselves: the full
// reconcile uses it to find mapped objects the source no longer has.
func (m *IDMap) SourceIDs(ctx context.Context, s Scope, fn func(sourceID string) error) error {
	if err := s.check("x"); err != nil {
		return err
	}
	prefix := s.Link + "." + s.Source + "." + s.Target + "." + string(s.Kind) + "."
	lister, err := m.kv.ListKeysFiltered(ctx, prefix+"*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return fmt.Errorf("replicator: list mappings %s: %w", s, err)
	}
	defer func() { _ = lister.Stop() }()
	for k := range lister.Keys() {
		raw, err := base64.RawURLEncoding.DecodeString(k[len(prefix):])
		if err != nil {
			return fmt.Errorf("replicator: mapping key %q: %w", k, err)
		}
		if err := fn(string(raw)); err != nil {
			return err
		}
	}
	return nil
}

// All returns every forward mapping of scope s by source id, read in one
// pass over the bucket (a full reconcile loads them all at once instead of
// one read per object).
func (m *IDMap) All(ctx context.Context, s Scope) (map[string]planner.Mapping, error) {
	if err := s.check("x"); err != nil {
		return nil, err
	}
	prefix := s.Link + "." + s.Source + "." + s.Target + "." + string(s.Kind) + "."
	w, err := m.kv.WatchFiltered(ctx, []string{prefix + "*"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("replicator: read mappings %s: %w", s, err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]planner.Mapping{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("replicator: read mappings %s: watcher stopped", s)
			}
			if e == nil { // the initial values are all delivered
				return out, nil
			}
			var mp planner.Mapping
			if err := json.Unmarshal(e.Value(), &mp); err != nil {
				return nil, fmt.Errorf("replicator: decode mapping %s: %w", e.Key(), err)
			}
			out[mp.SourceID] = mp
		}
	}
}
