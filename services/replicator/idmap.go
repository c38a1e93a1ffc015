package replicator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// defaultIDBucket is the JetStream KV bucket of id mappings.
const defaultIDBucket = "iamflow_replicator_ids"

// scope names one direction of one link for one kind of object.
type scope struct {
	Link   string
	Source string
	Target string
	Kind   planner.Kind
}

// Reverse is the scope of the opposite direction.
func (s scope) Reverse() scope {
	return scope{Link: s.Link, Source: s.Target, Target: s.Source, Kind: s.Kind}
}

// String renders the scope as link/source->target/kind.
func (s scope) String() string {
	return fmt.Sprintf("%s/%s->%s/%s", s.Link, s.Source, s.Target, s.Kind)
}

// idMap stores mappings in a JetStream KV bucket. Put writes each mapping
// in both directions (key of scope and source id, and key of the reversed
// scope and target id), so a bidirectional link, and the question "did
// iamflow create or adopt this target object?", are one Get.
//
// Keys: <link>.<source>.<target>.<kind>.<base64url(id)>; link and domain
// names are validated to be key-safe, ids are encoded.
type idMap struct {
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

// openIDMap creates (or updates) the bucket and returns the map. now stamps
// Mapping.Updated (nil: time.Now).
func openIDMap(ctx context.Context, js jetstream.JetStream, bucket string, pl Placement, now func() time.Time) (*idMap, error) {
	if bucket == "" {
		bucket = defaultIDBucket
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
	return &idMap{kv: kv, now: now}, nil
}

// key is the KV key of id in scope s.
func (s scope) key(id string) string {
	return s.prefix() + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// prefix is what every KV key of scope s begins with.
func (s scope) prefix() string {
	return s.Link + "." + s.Source + "." + s.Target + "." + string(s.Kind) + "."
}

func (s scope) check(id string) error {
	if s.Link == "" || s.Source == "" || s.Target == "" || (s.Kind != planner.KindUser && s.Kind != planner.KindGroup) || id == "" {
		return fmt.Errorf("replicator: incomplete id-map key %s id %q", s, id)
	}
	return nil
}

// Get returns the mapping of sourceID in s; found is false when there is none.
func (m *idMap) Get(ctx context.Context, s scope, sourceID string) (mp planner.Mapping, found bool, err error) {
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
func (m *idMap) Put(ctx context.Context, s scope, mp planner.Mapping) error {
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

// managedTarget reports whether iamflow created or adopted targetID in
// s.Target under s (one read of the reverse entry), or retired it there
// (a second read, for a user that has no reverse entry); it fills
// MembersInput.ManagedTargetUsers.
func (m *idMap) managedTarget(ctx context.Context, s scope, targetID string) (bool, error) {
	rev, found, err := m.Get(ctx, s.Reverse(), targetID)
	if err != nil {
		return false, err
	}
	if found {
		return rev.Reverse && (rev.Origin == planner.OriginCreated || rev.Origin == planner.OriginAdopted), nil
	}
	if s.Kind != planner.KindUser {
		return false, nil
	}
	_, err = m.kv.Get(ctx, s.retired().key(targetID))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("replicator: read retired copy %s %s: %w", s, targetID, err)
	}
	return true, nil
}

// Retired copies. A user the replicator retires in a target (deactivates
// there: the source deleted it, or it left the link's scope) loses its
// mapping, so that a user who comes back is matched and adopted afresh.
// The copy is still iamflow's, though: a group plan read before the
// retirement may add it to a group after it (the retirement found it in
// none), and only a record that the copy is iamflow's lets a later
// reconcile of that group take it out again (delete.only_managed). The
// record is kept under the kind "retired", keyed by the copy's id, and
// holds the source id it was the copy of. It stays when the copy is
// adopted again or deleted: it still says the truth, that iamflow made
// the copy, and is one small entry where the mapping was two.
const kindRetired planner.Kind = "retired"

// retired is the scope of s's retired copies.
func (s scope) retired() scope {
	return scope{Link: s.Link, Source: s.Source, Target: s.Target, Kind: kindRetired}
}

// markRetired records that targetID, the copy of sourceID in s, was
// retired by iamflow.
func (m *idMap) markRetired(ctx context.Context, s scope, sourceID, targetID string) error {
	if err := s.check(sourceID); err != nil {
		return err
	}
	if err := s.check(targetID); err != nil {
		return err
	}
	return m.put(ctx, s.retired(), planner.Mapping{SourceID: targetID, TargetID: sourceID, Origin: planner.OriginCreated, Reverse: true, Updated: m.now().UTC()})
}

// eachRetired calls fn with the id of every copy retired in s, read in one
// pass over the bucket.
func (m *idMap) eachRetired(ctx context.Context, s scope, fn func(targetID string)) error {
	return m.eachUnder(ctx, s.retired(), func(mp planner.Mapping) { fn(mp.SourceID) })
}

// ownedByAnother reports whether target object targetID is the copy of a
// source object other than sourceID, by its reverse entry in s.Reverse():
// a user deleted in the source and re-created under the same name, the new
// one having adopted the copy.
func (m *idMap) ownedByAnother(ctx context.Context, s scope, sourceID, targetID string) (bool, error) {
	owner, found, err := m.Get(ctx, s.Reverse(), targetID)
	if err != nil {
		return false, err
	}
	return found && (!owner.Reverse || owner.TargetID != sourceID), nil
}

// Delete forgets the mapping of sourceID in s and its reverse; forgetting
// what is not there is not an error.
func (m *idMap) Delete(ctx context.Context, s scope, sourceID string) error {
	old, found, err := m.Get(ctx, s, sourceID)
	if err != nil || !found {
		return err
	}
	if err := m.del(ctx, s.Reverse(), old.TargetID); err != nil {
		return err
	}
	return m.del(ctx, s, sourceID)
}

func (m *idMap) put(ctx context.Context, s scope, mp planner.Mapping) error {
	b, err := json.Marshal(mp)
	if err != nil {
		return fmt.Errorf("replicator: encode mapping %s %s: %w", s, mp.SourceID, err)
	}
	if _, err := m.kv.Put(ctx, s.key(mp.SourceID), b); err != nil {
		return fmt.Errorf("replicator: write mapping %s %s: %w", s, mp.SourceID, err)
	}
	return nil
}

func (m *idMap) del(ctx context.Context, s scope, id string) error {
	if err := m.kv.Delete(ctx, s.key(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("replicator: delete mapping %s %s: %w", s, id, err)
	}
	return nil
}

// sourceIDs calls fn with every source id mapped in s (forward entries
// only), in key order, without loading the mappings themselves: the full
// reconcile uses it to find mapped objects the source no longer has.
func (m *idMap) sourceIDs(ctx context.Context, s scope, fn func(sourceID string) error) error {
	if err := s.check("x"); err != nil {
		return err
	}
	prefix := s.prefix()
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

// all returns every forward mapping of scope s by source id, read in one
// pass over the bucket (a full reconcile loads them all at once instead of
// one read per object).
func (m *idMap) all(ctx context.Context, s scope) (map[string]planner.Mapping, error) {
	out := map[string]planner.Mapping{}
	if err := m.each(ctx, s, func(mp planner.Mapping) { out[mp.SourceID] = mp }); err != nil {
		return nil, err
	}
	return out, nil
}

// each calls fn with every forward mapping of scope s, read in one pass
// over the bucket.
func (m *idMap) each(ctx context.Context, s scope, fn func(planner.Mapping)) error {
	if err := s.check("x"); err != nil {
		return err
	}
	return m.eachUnder(ctx, s, fn)
}

// eachUnder calls fn with every record stored under s's prefix, whatever
// its kind (mappings, or the records of retired copies).
func (m *idMap) eachUnder(ctx context.Context, s scope, fn func(planner.Mapping)) error {
	err := bus.EachValue(ctx, m.kv, s.prefix()+"*", func(e jetstream.KeyValueEntry) error {
		var mp planner.Mapping
		if err := json.Unmarshal(e.Value(), &mp); err != nil {
			return fmt.Errorf("decode mapping %s: %w", e.Key(), err)
		}
		fn(mp)
		return nil
	})
	if err != nil {
		return fmt.Errorf("replicator: read mappings %s: %w", s, err)
	}
	return nil
}
