package scimserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
)

// A pushed directory lives in the KV bucket BucketPrefix+<source>:
//
//	user.<id>            a user record (JSON), a tombstone once deleted
//	group.<id>           a group record, without members
//	member.<gid>.<uid>   one membership (empty value)
//	name.user.<hash>     the id holding a userName (sha256 of it lower-cased)
//	name.group.<hash>    the id holding a group displayName
//
// Records are written with the revision they were read at (Create or
// Update), so two writers never overwrite each other, and the name keys are
// claimed with Create, so two replicas cannot give one userName to two users.
// Every process keeps the directory in memory, fed by a watch of the bucket:
// the watch is the only writer of that copy, and a write waits until the
// watch has applied it before answering, so a client reads its own writes.

// BucketPrefix is the prefix of a pushed source's KV bucket name.
const BucketPrefix = "iamflow_scim_"

// record is a user or group as stored.
type record struct {
	ID       string    `json:"id"`
	Version  int64     `json:"v"`
	Created  time.Time `json:"created"`
	Modified time.Time `json:"modified"`
	// Deleted marks a tombstone: the resource is gone; the record stays so a
	// replayed DELETE publishes the same event again.
	Deleted bool `json:"deleted,omitempty"`
	// Name is the userName or displayName, External the externalId.
	Name     string `json:"name,omitempty"`
	External string `json:"ext,omitempty"`
	// Attrs are the attributes (attrs.go), without members.
	Attrs json.RawMessage `json:"attrs,omitempty"`
	// Events are the events of the change that made this version: published
	// again by a replay of the request, and by the next change of the
	// resource, in case the publish after the write was lost.
	Events []storedEvent `json:"events,omitempty"`
}

// storedEvent is an identity event as kept in a record.
type storedEvent struct {
	ID      string    `json:"id"`
	Kind    string    `json:"k"` // user, group, membership
	Action  string    `json:"a"` // created, updated, ...
	ResID   string    `json:"rid"`
	ResName string    `json:"rn,omitempty"`
	RelID   string    `json:"uid,omitempty"`
	RelName string    `json:"un,omitempty"`
	Changed []string  `json:"ch,omitempty"`
	At      time.Time `json:"at"`
}

// attrs decodes the record's attributes.
func (r *record) attrs() map[string]any {
	m := map[string]any{}
	if len(r.Attrs) > 0 {
		_ = json.Unmarshal(r.Attrs, &m)
	}
	return m
}

// etag is the record's entity tag.
func (r *record) etag() string { return fmt.Sprintf(`W/"%d"`, r.Version) }

// entry is a record in memory with the KV revision it was read at.
type entry struct {
	rev uint64
	rec *record
}

// directory is one pushed source's state.
type directory struct {
	source string
	kv     jetstream.KeyValue
	log    *slog.Logger

	// locks serialise this process's writes to one resource (or to one
	// name, for creates); writes to different resources run in parallel.
	// Between processes, the revision checks of the bucket do the same.
	locks [64]sync.Mutex

	mu      sync.RWMutex
	applied uint64        // the newest bucket revision the watch applied
	notify  chan struct{} // closed and replaced at each apply
	res     [2]map[string]*entry
	byName  [2]map[string]string // lower-case userName/displayName -> id (live only)
	byExt   [2]map[string]string // externalId -> id (live only)
	sorted  [2][]string          // live ids sorted; nil when stale
	members map[string]map[string]struct{}
	// memberOf is the reverse of members: user id -> group ids.
	memberOf map[string]map[string]struct{}

	watcher jetstream.KeyWatcher
	done    chan struct{}
}

// openDirectory opens (creating) the source's bucket and loads it.
func openDirectory(ctx context.Context, js jetstream.JetStream, source string, storage jetstream.StorageType, replicas int, log *slog.Logger) (*directory, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketPrefix + source,
		Description: "iamflow pushed source " + source + ": the users, groups and memberships its identity provider pushed over SCIM",
		History:     1,
		Storage:     storage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("pushed source %s: create bucket %s: %w", source, BucketPrefix+source, err)
	}
	d := &directory{source: source, kv: kv, log: log, notify: make(chan struct{}),
		members: map[string]map[string]struct{}{}, memberOf: map[string]map[string]struct{}{}, done: make(chan struct{})}
	for i := range d.res {
		d.res[i] = map[string]*entry{}
		d.byName[i] = map[string]string{}
		d.byExt[i] = map[string]string{}
	}
	w, err := kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("pushed source %s: watch bucket: %w", source, err)
	}
	d.watcher = w
	ready := make(chan struct{})
	go d.watch(ready)
	select {
	case <-ready:
	case <-ctx.Done():
		_ = w.Stop()
		return nil, fmt.Errorf("pushed source %s: load bucket: %w", source, ctx.Err())
	}
	return d, nil
}

// watch applies the bucket's changes to the memory copy until stopped.
func (d *directory) watch(ready chan struct{}) {
	defer close(d.done)
	initial := true
	for e := range d.watcher.Updates() {
		if e == nil {
			if initial {
				initial = false
				close(ready)
			}
			continue
		}
		d.apply(e)
	}
	if initial {
		close(ready)
	}
}

func (d *directory) close() {
	_ = d.watcher.Stop()
	<-d.done
}

// apply brings one bucket entry into the memory copy.
func (d *directory) apply(e jetstream.KeyValueEntry) {
	key, rev := e.Key(), e.Revision()
	deleted := e.Operation() != jetstream.KeyValuePut
	d.mu.Lock()
	defer func() {
		if rev > d.applied {
			d.applied = rev
		}
		close(d.notify)
		d.notify = make(chan struct{})
		d.mu.Unlock()
	}()
	switch {
	case strings.HasPrefix(key, "user."), strings.HasPrefix(key, "group."):
		k := kindUser
		if strings.HasPrefix(key, "group.") {
			k = kindGroup
		}
		if deleted { // purged by an operator: forget it
			if old := d.res[k][key[strings.IndexByte(key, '.')+1:]]; old != nil {
				d.unindex(k, old.rec)
				delete(d.res[k], old.rec.ID)
				d.sorted[k] = nil
			}
			return
		}
		rec := &record{}
		if err := json.Unmarshal(e.Value(), rec); err != nil || rec.ID == "" {
			d.log.Warn("pushed source: unreadable record in the bucket; ignored", "source", d.source, "key", key, "error", err)
			return
		}
		old := d.res[k][rec.ID]
		if old != nil {
			if old.rev >= rev {
				return
			}
			d.unindex(k, old.rec)
			if old.rec.Deleted != rec.Deleted {
				d.sorted[k] = nil
			}
		} else {
			d.sorted[k] = nil
		}
		d.res[k][rec.ID] = &entry{rev: rev, rec: rec}
		if !rec.Deleted {
			if rec.Name != "" {
				d.byName[k][strings.ToLower(rec.Name)] = rec.ID
			}
			if rec.External != "" {
				d.byExt[k][rec.External] = rec.ID
			}
		}
	case strings.HasPrefix(key, "member."):
		gid, uid, ok := strings.Cut(strings.TrimPrefix(key, "member."), ".")
		if !ok {
			return
		}
		if deleted {
			delete(d.members[gid], uid)
			delete(d.memberOf[uid], gid)
			return
		}
		if d.members[gid] == nil {
			d.members[gid] = map[string]struct{}{}
		}
		d.members[gid][uid] = struct{}{}
		if d.memberOf[uid] == nil {
			d.memberOf[uid] = map[string]struct{}{}
		}
		d.memberOf[uid][gid] = struct{}{}
	}
}

func (d *directory) unindex(k kind, r *record) {
	if id, ok := d.byName[k][strings.ToLower(r.Name)]; ok && id == r.ID {
		delete(d.byName[k], strings.ToLower(r.Name))
	}
	if id, ok := d.byExt[k][r.External]; ok && id == r.ID {
		delete(d.byExt[k], r.External)
	}
}

// lock locks the stripe of key and returns its unlock.
func (d *directory) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &d.locks[h.Sum32()%uint32(len(d.locks))]
	m.Lock()
	return m.Unlock
}

// waitApplied waits until the memory copy has applied revision rev.
func (d *directory) waitApplied(ctx context.Context, rev uint64) error {
	for {
		d.mu.RLock()
		ok, ch := d.applied >= rev, d.notify
		d.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the bucket watch to apply revision %d: %w", rev, ctx.Err())
		}
	}
}

// get returns the live resource with id, or nil; tombstones with gone.
func (d *directory) get(k kind, id string) (e *entry, gone bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e = d.res[k][id]
	if e == nil {
		return nil, false
	}
	if e.rec.Deleted {
		return nil, true
	}
	return e, false
}

// tombstone returns the tombstone of id, if any.
func (d *directory) tombstone(k kind, id string) *entry {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if e := d.res[k][id]; e != nil && e.rec.Deleted {
		return e
	}
	return nil
}

// byNameOf returns the live resource whose name is name (case-insensitive).
func (d *directory) byNameOf(k kind, name string) *entry {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if id, ok := d.byName[k][strings.ToLower(name)]; ok {
		return d.res[k][id]
	}
	return nil
}

// byExtOf returns the live resource whose externalId is ext.
func (d *directory) byExtOf(k kind, ext string) *entry {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if id, ok := d.byExt[k][ext]; ok {
		return d.res[k][id]
	}
	return nil
}

// ids returns the live ids of kind k, sorted.
func (d *directory) ids(k kind) []string {
	d.mu.RLock()
	s := d.sorted[k]
	d.mu.RUnlock()
	if s != nil {
		return s
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sorted[k] == nil {
		s := make([]string, 0, len(d.res[k]))
		for id, e := range d.res[k] {
			if !e.rec.Deleted {
				s = append(s, id)
			}
		}
		slices.Sort(s)
		d.sorted[k] = s
	}
	return d.sorted[k]
}

// membersOf returns the member ids of group gid, sorted: live users only
// (a membership written while its user was being deleted is not one).
func (d *directory) membersOf(gid string) []string {
	return d.liveIDs(d.members, gid, kindUser)
}

// groupsOf returns the group ids user uid is a member of, sorted.
func (d *directory) groupsOf(uid string) []string {
	return d.liveIDs(d.memberOf, uid, kindGroup)
}

// liveIDs returns the ids index holds for key (one side of the membership
// index, read under d.mu) that name a live resource of kind k, sorted.
func (d *directory) liveIDs(index map[string]map[string]struct{}, key string, k kind) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]string, 0, len(index[key]))
	for id := range index[key] {
		if e := d.res[k][id]; e != nil && !e.rec.Deleted {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// isMember reports whether uid is a member of gid.
func (d *directory) isMember(gid, uid string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.members[gid][uid]
	return ok
}

// counts returns the number of live users and groups.
func (d *directory) counts() (users, groups int) {
	return len(d.ids(kindUser)), len(d.ids(kindGroup))
}

func recordKey(k kind, id string) string {
	if k == kindGroup {
		return "group." + id
	}
	return "user." + id
}

func memberKey(gid, uid string) string { return "member." + gid + "." + uid }

func nameKey(k kind, name string) string {
	h := sha256.Sum256([]byte(strings.ToLower(name)))
	return "name." + strings.ToLower(k.String()) + "." + hex.EncodeToString(h[:16])
}

// errConflict is a write that lost to another writer (another replica).
var errConflict = errors.New("the resource changed while it was written")

// writeRecord stores rec, which was read at revision prev (0: new), and
// returns the new revision.
func (d *directory) writeRecord(ctx context.Context, k kind, rec *record, prev uint64) (uint64, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	var rev uint64
	if prev == 0 {
		rev, err = d.kv.Create(ctx, recordKey(k, rec.ID), b)
	} else {
		rev, err = d.kv.Update(ctx, recordKey(k, rec.ID), b, prev)
	}
	if isWrongRevision(err) {
		return 0, errConflict
	}
	if err != nil {
		return 0, fmt.Errorf("write %s %s: %w", strings.ToLower(k.String()), rec.ID, err)
	}
	return rev, nil
}

// isWrongRevision reports a Create of an existing key or an Update at a
// revision that is no longer the newest.
func isWrongRevision(err error) bool { return bus.IsWrongRevision(err) }

// claimName makes the name key of name point at id. It fails with 409 when
// a live resource of another id holds the name.
func (d *directory) claimName(ctx context.Context, k kind, name, id string) (uint64, error) {
	key := nameKey(k, name)
	for attempt := 0; attempt < 3; attempt++ {
		rev, err := d.kv.Create(ctx, key, []byte(id))
		if err == nil {
			return rev, nil
		}
		if !isWrongRevision(err) {
			return 0, fmt.Errorf("claim %s %q: %w", nameAttr(k), name, err)
		}
		cur, err := d.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("claim %s %q: %w", nameAttr(k), name, err)
		}
		owner := string(cur.Value())
		if owner == id {
			return cur.Revision(), nil
		}
		// The key may be stale: its owner deleted, renamed, or never written
		// (a crash between the claim and the record).
		held, err := d.holdsName(ctx, k, owner, name)
		if err != nil {
			return 0, err
		}
		if held {
			return 0, errorf(409, TypeUniqueness, "%s %q is already taken by %s %s", nameAttr(k), name, k, owner)
		}
		rev, err = d.kv.Update(ctx, key, []byte(id), cur.Revision())
		if err == nil {
			return rev, nil
		}
		if !isWrongRevision(err) {
			return 0, fmt.Errorf("claim %s %q: %w", nameAttr(k), name, err)
		}
	}
	return 0, errConflict
}

// holdsName reads id's record from the bucket (not the memory copy, which
// may lag another replica) and reports whether it is live and named name.
func (d *directory) holdsName(ctx context.Context, k kind, id, name string) (bool, error) {
	e, err := d.kv.Get(ctx, recordKey(k, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s %s: %w", strings.ToLower(k.String()), id, err)
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return false, nil
	}
	return !r.Deleted && strings.EqualFold(r.Name, name), nil
}

// releaseName deletes the name key of name if it still points at id.
func (d *directory) releaseName(ctx context.Context, k kind, name, id string) {
	key := nameKey(k, name)
	cur, err := d.kv.Get(ctx, key)
	if err != nil || string(cur.Value()) != id {
		return
	}
	if err := d.kv.Delete(ctx, key, jetstream.LastRevision(cur.Revision())); err != nil && !isWrongRevision(err) {
		d.log.Warn("pushed source: could not release a name; the next claim repairs it", "source", d.source, "key", key, "error", err)
	}
}

func nameAttr(k kind) string {
	if k == kindGroup {
		return "displayName"
	}
	return "userName"
}

// newID returns a random resource id in the UUID form IdPs expect.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
