package scimserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// maxStoredEvents bounds the events kept in a record for republishing: a
// request changing more memberships than this publishes them all, and
// keeps the first ones (a full reconcile covers the rest after a crash).
const maxStoredEvents = 1000

// writeResult is what one write did.
type writeResult struct {
	entry *entry        // the resource after the write; nil when deleted
	pub   []storedEvent // to publish before answering
	err   error         // a *Error to answer after publishing, or a failure
}

// write runs f, a write under the source's lock, again when another writer
// (another replica) changed the resource in between, then publishes the
// events it returned and returns its entry or error.
func (h *request) write(f func(ctx context.Context) writeResult) (*entry, error) {
	// Bounded: the KV writes, the watch catching up and the publish.
	ctx, cancel := context.WithTimeout(h.r.Context(), 2*h.s.publishTimeout)
	defer cancel()
	var res writeResult
	for attempt := 0; attempt < 3; attempt++ {
		res = f(ctx)
		if !errors.Is(res.err, errConflict) {
			break
		}
	}
	if len(res.pub) > 0 {
		if err := h.s.publish(ctx, h.src.Name, res.pub); err != nil {
			return nil, err
		}
	}
	return res.entry, res.err
}

// create answers POST /Users or /Groups.
func (h *request) create(k kind) error {
	var body map[string]any
	if err := h.body(&body); err != nil {
		return err
	}
	attrs, members, err := h.resourceBody(k, body)
	if err != nil {
		return err
	}
	d := h.src.dir
	e, werr := h.write(func(ctx context.Context) writeResult {
		name := stringAttr(attrs, nameAttr(k))
		defer d.lock(nameKey(k, name))()
		if x := d.byNameOf(k, name); x != nil {
			// A duplicate, or the IdP's retry of a create whose answer it
			// lost: either way its events are published again (harmless).
			return writeResult{pub: x.rec.Events, err: errorf(http.StatusConflict, TypeUniqueness,
				"%s %q is already taken by %s %s", nameAttr(k), name, k, x.rec.ID)}
		}
		if err := d.checkMembers(members); err != nil {
			return writeResult{err: err}
		}
		id := newID()
		if _, err := d.claimName(ctx, k, name, id); err != nil {
			return writeResult{err: err}
		}
		now := h.s.now()
		rec := &record{ID: id, Version: 1, Created: now, Modified: now, Name: name, External: stringAttr(attrs, "externalId")}
		rec.Attrs, _ = json.Marshal(attrs)
		evs := []storedEvent{{ID: eventID(h.src.Name, k, id, 1, "created", ""), Kind: kindToken(k), Action: "created",
			ResID: id, ResName: name, At: now}}
		evs = append(evs, d.memberEvents(h.src.Name, rec, "member_added", members)...)
		rec.Events = capEvents(evs)
		rev, err := d.writeRecord(ctx, k, rec, 0)
		if err != nil {
			d.releaseName(ctx, k, name, id)
			return writeResult{err: err}
		}
		if rev, err = d.putMembers(ctx, id, members, nil, rev); err != nil {
			return writeResult{pub: evs, err: err}
		}
		if err := d.waitApplied(ctx, rev); err != nil {
			return writeResult{pub: evs, err: err}
		}
		e, _ := d.get(k, id)
		return writeResult{entry: e, pub: evs}
	})
	if werr != nil {
		return werr
	}
	h.w.Header().Set("Location", h.base()+k.endpoint()+"/"+e.rec.ID)
	return h.answer(http.StatusCreated, k, e)
}

// replace answers PUT: the resource's attributes become the body's. A
// group's members change only when the body has members: an IdP that
// renames a group with PUT and leaves members out does not empty it.
func (h *request) replace(k kind, id string) error {
	var body map[string]any
	if err := h.body(&body); err != nil {
		return err
	}
	if v, ok := body["id"].(string); ok && v != id {
		return mutability("id %q in the body is not the resource's id %s", v, id)
	}
	attrs, members, err := h.resourceBody(k, body)
	if err != nil {
		return err
	}
	_, hasMembers := findKey(body, "members")
	e, werr := h.update(k, id, func(*entry) (map[string]any, []string, bool, *Error) {
		return attrs, members, hasMembers || members != nil, nil
	})
	if werr != nil {
		return werr
	}
	return h.answer(http.StatusOK, k, e)
}

// patch answers PATCH.
func (h *request) patch(k kind, id string) error {
	var pr patchRequest
	if err := h.body(&pr); err != nil {
		return err
	}
	if len(pr.Schemas) > 0 && !slices.ContainsFunc(pr.Schemas, func(s string) bool { return strings.EqualFold(s, SchemaPatchOp) }) {
		return invalidValue("schemas must be [%q]", SchemaPatchOp)
	}
	d := h.src.dir
	e, werr := h.update(k, id, func(cur *entry) (map[string]any, []string, bool, *Error) {
		doc := cur.rec.attrs()
		if k == kindGroup {
			var list []any
			for _, uid := range d.membersOf(id) {
				list = append(list, map[string]any{"value": uid})
			}
			doc["members"] = list
		}
		out, err := applyPatch(k, id, doc, pr.Operations)
		if err != nil {
			return nil, nil, false, err
		}
		if k != kindGroup {
			return out, nil, false, nil
		}
		v := out["members"]
		delete(out, "members")
		members, err := memberIDs(v)
		return out, members, true, err
	})
	if werr != nil {
		return werr
	}
	if k == kindGroup && h.r.URL.Query().Get("attributes") == "" {
		// A group's answer would carry every member: IdPs accept 204.
		h.w.Header().Set("ETag", e.rec.etag())
		h.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return h.answer(http.StatusOK, k, e)
}

// update changes a live resource to what compute makes of it. members is
// the group's new member list when setMembers.
func (h *request) update(k kind, id string, compute func(*entry) (attrs map[string]any, members []string, setMembers bool, err *Error)) (*entry, error) {
	ifMatch := h.r.Header.Get("If-Match")
	return h.write(func(ctx context.Context) writeResult {
		defer h.src.dir.lock(recordKey(k, id))()
		return h.updateLocked(ctx, k, id, ifMatch, compute)
	})
}

// updateLocked is update under the resource's lock: the version check, the
// change computed and checked, a replay recognised, the name claimed when it
// changes, then the write with its events.
func (h *request) updateLocked(ctx context.Context, k kind, id, ifMatch string, compute func(*entry) (map[string]any, []string, bool, *Error)) writeResult {
	d := h.src.dir
	e, _ := d.get(k, id)
	if e == nil {
		return writeResult{err: notFound("%s %s not found", k, id)}
	}
	if ifMatch != "" && !etagMatches(ifMatch, e.rec.etag()) {
		return writeResult{err: errorf(http.StatusPreconditionFailed, "", "%s %s is at version %s, not %s", k, id, e.rec.etag(), ifMatch)}
	}
	attrs, members, setMembers, cerr := compute(e)
	if cerr != nil {
		return writeResult{err: cerr}
	}
	name := stringAttr(attrs, nameAttr(k))
	if strings.TrimSpace(name) == "" {
		return writeResult{err: invalidValue("%s is required", nameAttr(k))}
	}
	changed := changedAttrs(e.rec.attrs(), attrs)
	var added, removed []string
	if setMembers {
		added, removed = memberDiff(d.membersOf(id), members)
		if err := d.checkMembers(added); err != nil {
			return writeResult{err: err}
		}
	}
	if len(changed) == 0 && len(added) == 0 && len(removed) == 0 {
		// Nothing to change: a replay. Its events go out again.
		return writeResult{entry: e, pub: e.rec.Events}
	}
	renamed := !strings.EqualFold(name, e.rec.Name)
	if renamed {
		if x := d.byNameOf(k, name); x != nil && x.rec.ID != id {
			return writeResult{err: errorf(http.StatusConflict, TypeUniqueness, "%s %q is already taken by %s %s", nameAttr(k), name, k, x.rec.ID)}
		}
		if _, err := d.claimName(ctx, k, name, id); err != nil {
			return writeResult{err: err}
		}
	}
	now := h.s.now()
	rec := *e.rec
	rec.Version++
	rec.Modified, rec.Name, rec.External = now, name, stringAttr(attrs, "externalId")
	rec.Attrs, _ = json.Marshal(attrs)
	evs := h.updateEvents(k, id, &rec, attrs, changed, added, removed)
	rec.Events = capEvents(evs)
	return h.commitUpdate(ctx, k, id, e, &rec, evs, renamed, added, removed)
}

// memberDiff is who members adds to cur and who it removes.
func memberDiff(cur, members []string) (added, removed []string) {
	for _, uid := range members {
		if !slices.Contains(cur, uid) {
			added = append(added, uid)
		}
	}
	for _, uid := range cur {
		if !slices.Contains(members, uid) {
			removed = append(removed, uid)
		}
	}
	return added, removed
}

// updateEvents are the events of an update to rec: the resource updated
// (for a user whose active flag changed, activated or deactivated) when
// attributes changed, then a membership event per member added or removed.
func (h *request) updateEvents(k kind, id string, rec *record, attrs map[string]any, changed, added, removed []string) []storedEvent {
	d := h.src.dir
	var evs []storedEvent
	if len(changed) > 0 {
		action := "updated"
		if k == kindUser && slices.Contains(changed, "active") {
			if b, ok := attrs["active"].(bool); ok && b {
				action = "activated"
			} else if ok && !b {
				action = "deactivated"
			}
		}
		evs = append(evs, storedEvent{ID: eventID(h.src.Name, k, id, rec.Version, action, ""), Kind: kindToken(k), Action: action,
			ResID: id, ResName: rec.Name, Changed: changed, At: rec.Modified})
	}
	evs = append(evs, d.memberEvents(h.src.Name, rec, "member_added", added)...)
	return append(evs, d.memberEvents(h.src.Name, rec, "member_removed", removed)...)
}

// commitUpdate writes rec over e and its member changes, releases the name
// it no longer has (or, when the write fails, the one it claimed), and
// waits until the directory shows it.
func (h *request) commitUpdate(ctx context.Context, k kind, id string, e *entry, rec *record, evs []storedEvent, renamed bool, added, removed []string) writeResult {
	d := h.src.dir
	rev, err := d.writeRecord(ctx, k, rec, e.rev)
	if err != nil {
		if renamed {
			d.releaseName(ctx, k, rec.Name, id)
		}
		if errors.Is(err, errConflict) {
			d.catchUp(ctx, k, id)
		}
		return writeResult{err: err}
	}
	pub := append(slices.Clone(e.rec.Events), evs...)
	if rev, err = d.putMembers(ctx, id, added, removed, rev); err != nil {
		return writeResult{pub: pub, err: err}
	}
	if renamed {
		d.releaseName(ctx, k, e.rec.Name, id)
	}
	if err := d.waitApplied(ctx, rev); err != nil {
		return writeResult{pub: pub, err: err}
	}
	ne, _ := d.get(k, id)
	return writeResult{entry: ne, pub: pub}
}

// delete answers DELETE. The record stays as a tombstone, so a replayed
// DELETE (404) publishes the same events again; a deleted user leaves its
// groups and a deleted group's members leave it, each with its event.
func (h *request) delete(k kind, id string) error {
	d := h.src.dir
	ifMatch := h.r.Header.Get("If-Match")
	_, err := h.write(func(ctx context.Context) writeResult {
		defer d.lock(recordKey(k, id))()
		e, gone := d.get(k, id)
		if e == nil {
			var pub []storedEvent
			if gone {
				pub = d.tombstone(k, id).rec.Events
			}
			return writeResult{pub: pub, err: notFound("%s %s not found", k, id)}
		}
		if ifMatch != "" && !etagMatches(ifMatch, e.rec.etag()) {
			return writeResult{err: errorf(http.StatusPreconditionFailed, "", "%s %s is at version %s, not %s", k, id, e.rec.etag(), ifMatch)}
		}
		now := h.s.now()
		rec := *e.rec
		rec.Version++
		rec.Modified, rec.Deleted, rec.Attrs, rec.External = now, true, nil, ""
		evs := []storedEvent{{ID: eventID(h.src.Name, k, id, rec.Version, "deleted", ""), Kind: kindToken(k), Action: "deleted",
			ResID: id, ResName: rec.Name, At: now}}
		var removeKeys []string
		if k == kindUser {
			for _, gid := range d.groupsOf(id) {
				g, _ := d.get(kindGroup, gid)
				if g == nil {
					continue
				}
				evs = append(evs, storedEvent{ID: eventID(h.src.Name, kindGroup, gid, g.rec.Version, "member_removed", id),
					Kind: "membership", Action: "member_removed", ResID: gid, ResName: g.rec.Name, RelID: id, RelName: rec.Name, At: now})
				removeKeys = append(removeKeys, memberKey(gid, id))
			}
		} else {
			members := d.membersOf(id)
			evs = append(evs, d.memberEvents(h.src.Name, &rec, "member_removed", members)...)
			for _, uid := range members {
				removeKeys = append(removeKeys, memberKey(id, uid))
			}
		}
		rec.Events = capEvents(evs)
		rev, err := d.writeRecord(ctx, k, &rec, e.rev)
		if err != nil {
			if errors.Is(err, errConflict) {
				d.catchUp(ctx, k, id)
			}
			return writeResult{err: err}
		}
		pub := append(slices.Clone(e.rec.Events), evs...)
		for _, key := range removeKeys {
			if err := d.kv.Delete(ctx, key); err != nil {
				return writeResult{pub: pub, err: err}
			}
		}
		if len(removeKeys) > 0 {
			if rev, err = d.lastRevision(ctx, rev); err != nil {
				return writeResult{pub: pub, err: err}
			}
		}
		d.releaseName(ctx, k, e.rec.Name, id)
		if err := d.waitApplied(ctx, rev); err != nil {
			return writeResult{pub: pub, err: err}
		}
		return writeResult{pub: pub}
	})
	if err != nil {
		return err
	}
	h.w.WriteHeader(http.StatusNoContent)
	return nil
}

// answer writes a resource with its ETag, projected as the query asks.
func (h *request) answer(status int, k kind, e *entry) error {
	proj, err := h.projection(k)
	if err != nil {
		return err
	}
	h.w.Header().Set("ETag", e.rec.etag())
	return h.json(status, h.render(k, e, proj))
}

// resourceBody checks a POST or PUT body and returns its attributes and,
// for a group, the member ids it names (nil: no members key).
func (h *request) resourceBody(k kind, body map[string]any) (map[string]any, []string, *Error) {
	if key, ok := findKey(body, "schemas"); ok {
		list, _ := body[key].([]any)
		if !slices.ContainsFunc(list, func(s any) bool { v, _ := s.(string); return strings.EqualFold(v, k.coreSchema()) }) {
			return nil, nil, invalidValue("schemas must include %q", k.coreSchema())
		}
	}
	var members []string
	if k == kindGroup {
		if key, ok := findKey(body, "members"); ok {
			var err *Error
			if members, err = memberIDs(body[key]); err != nil {
				return nil, nil, err
			}
			if members == nil {
				members = []string{}
			}
			delete(body, key)
		}
	}
	if err := normalize(k, body); err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(stringAttr(body, nameAttr(k))) == "" {
		return nil, nil, invalidValue("%s is required", nameAttr(k))
	}
	return body, members, nil
}

// memberIDs reads a members value: a list of {"value": id} objects.
func memberIDs(v any) ([]string, *Error) {
	if v == nil {
		return []string{}, nil
	}
	out := []string{}
	for i, x := range toList(v) {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, invalidValue("members[%d] must be an object with a value, not %s", i, jsonKind(x))
		}
		id := stringAttr(m, "value")
		if strings.TrimSpace(id) == "" {
			return nil, invalidValue("members[%d] has no value (the member's id)", i)
		}
		if t := stringAttr(m, "type"); t != "" && !strings.EqualFold(t, "User") {
			return nil, invalidValue("members[%d] is a %s: only users can be members of a pushed group", i, t)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// checkMembers refuses member ids that are not live users of the source.
func (d *directory) checkMembers(ids []string) *Error {
	for _, uid := range ids {
		if e, _ := d.get(kindUser, uid); e == nil {
			return invalidValue("member %q is not a user of pushed source %s: create the user first", uid, d.source)
		}
	}
	return nil
}

// memberEvents are the membership events of group rec's members.
func (d *directory) memberEvents(source string, rec *record, action string, uids []string) []storedEvent {
	out := make([]storedEvent, 0, len(uids))
	for _, uid := range uids {
		name := ""
		d.mu.RLock()
		if u := d.res[kindUser][uid]; u != nil {
			name = u.rec.Name
		}
		d.mu.RUnlock()
		out = append(out, storedEvent{ID: eventID(source, kindGroup, rec.ID, rec.Version, action, uid), Kind: "membership",
			Action: action, ResID: rec.ID, ResName: rec.Name, RelID: uid, RelName: name, At: rec.Modified})
	}
	return out
}

// putMembers writes the member keys of gid's added and removed members and
// returns the newest revision written (at least rev).
func (d *directory) putMembers(ctx context.Context, gid string, added, removed []string, rev uint64) (uint64, error) {
	for _, uid := range added {
		r, err := d.kv.Put(ctx, memberKey(gid, uid), []byte("1"))
		if err != nil {
			return rev, err
		}
		rev = max(rev, r)
	}
	for _, uid := range removed {
		if err := d.kv.Delete(ctx, memberKey(gid, uid)); err != nil {
			return rev, err
		}
	}
	if len(removed) > 0 {
		return d.lastRevision(ctx, rev)
	}
	return rev, nil
}

// lastRevision returns the bucket's newest revision (at least rev): a
// delete does not say the revision of its marker.
func (d *directory) lastRevision(ctx context.Context, rev uint64) (uint64, error) {
	st, err := d.kv.Status(ctx)
	if err != nil {
		return rev, err
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return max(rev, bs.StreamInfo().State.LastSeq), nil
	}
	return rev, nil
}

// catchUp waits until the memory copy has the bucket's newest version of
// the record, after a write lost to another writer.
func (d *directory) catchUp(ctx context.Context, k kind, id string) {
	e, err := d.kv.Get(ctx, recordKey(k, id))
	if err == nil {
		_ = d.waitApplied(ctx, e.Revision())
	} else if errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
}

// changedAttrs lists the top-level attributes that differ, sorted.
func changedAttrs(old, cur map[string]any) []string {
	var out []string
	for k, v := range cur {
		if ov, ok := old[k]; !ok || !reflect.DeepEqual(ov, v) {
			out = append(out, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func capEvents(evs []storedEvent) []storedEvent {
	if len(evs) > maxStoredEvents {
		return evs[:maxStoredEvents]
	}
	return evs
}
