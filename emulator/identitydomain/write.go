package identitydomain

import (
	"net/http"
	"strings"
	"time"
)

// Writes: every successful write gets a new meta.version (32 hex digits, as
// IDCS's sample shows), also when nothing changed; events are emitted only for
// what did change. The ETag header is W/"<meta.version>" (RFC 7644 §3.14; the
// IDCS header format is not documented). If-Match on PUT, PATCH and DELETE
// accepts the ETag, the bare meta.version, a quoted one or *; a mismatch is
// 412 Precondition Failed. Membership changes bump the group's version, not
// the user's.

// txn collects the events of one write.
type txn struct {
	changes []change
}

func (t *txn) emit(c ...change) { t.changes = append(t.changes, c...) }

// commit runs fn with the store locked for writing; if fn succeeds, its
// events are emitted in commit order before commit returns.
func (d *Domain) commit(r *request, fn func(tx *txn) error) error {
	d.store.mu.Lock()
	tx := &txn{}
	if err := fn(tx); err != nil {
		d.store.mu.Unlock()
		return err
	}
	d.events.emitMu.Lock()
	d.store.mu.Unlock()
	defer d.events.emitMu.Unlock()
	d.writes.record(d.clock.Now(), d.actor(r), tx.changes)
	for _, c := range tx.changes {
		d.events.emit(d.buildEvent(c, r))
	}
	return nil
}

func (d *Domain) actor(r *request) actorRef {
	if r.client == nil {
		return actorRef{}
	}
	return newActor(r.client.ID, r.client.Name)
}

// touch records a write to r.
func (d *Domain) touch(res *resource, a actorRef, now time.Time) {
	res.modified = now
	res.modifiedBy = a
	res.version = d.ids.hex32()
}

// meta returns the resource itself; through embedding it gives userRec and
// groupRec a common method for the generic code (keyed).
func (res *resource) meta() *resource { return res }

// uniqueName checks the name attrs gives a resource of type rt (its
// required attribute): 400 when it is blank, 409 when byName (the store's
// index by lower-cased name) holds another resource under it. self is the
// resource written, or nil for a create.
func uniqueName[R comparable](rt *resourceType, byName map[string]R, attrs map[string]any, self R) error {
	name, _ := attrs[rt.required].(string)
	if strings.TrimSpace(name) == "" {
		return errMissing(rt.required)
	}
	if other, ok := byName[strings.ToLower(name)]; ok && other != self {
		return errConflict("A %s with %s %s already exists.", strings.ToLower(rt.name), rt.required, name)
	}
	return nil
}

// writeTarget returns the resource of kind k (read with the store locked)
// that r names, for a PUT, PATCH or DELETE: 404 with k's name when there is
// none, 412 when r's If-Match names another version.
func writeTarget[R keyed](k kindOps[R], r *request) (R, error) {
	var none R
	rec := k.tab.byID[r.id]
	if rec == none {
		return none, errNotFound(k.rt.name, r.id)
	}
	if err := checkIfMatch(r, rec.meta().version, rec.meta().id); err != nil {
		return none, err
	}
	return rec, nil
}

// deleteHandler answers a DELETE of one resource of kind: it emits k's
// deleted event, with the resource as adminValuesRemoved, then takes the
// resource out of the store.
func deleteHandler[R keyed](d *Domain, kind func() kindOps[R]) handlerFunc {
	return func(w http.ResponseWriter, r *request) error {
		k := kind()
		err := d.commit(r, func(tx *txn) error {
			rec, err := writeTarget(k, r)
			if err != nil {
				return err
			}
			full, _ := k.render(rec, r.base, defaultProjection)
			tx.emit(change{typ: k.deleted, res: k.snap(rec), removed: d.renderedFull(k.rt, full)})
			k.remove(rec)
			return nil
		})
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// commitResource commits fn, which returns the written resource rendered
// with proj and its version, and answers with it: status and its ETag.
func (d *Domain) commitResource(w http.ResponseWriter, r *request, status int, rt *resourceType, proj *projection, fn func(tx *txn) (map[string]any, string, error)) error {
	var doc map[string]any
	var version string
	err := d.commit(r, func(tx *txn) error {
		var err error
		doc, version, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	writeResource(w, status, proj.apply(rt, doc), version)
	return nil
}

func checkIfMatch(r *request, version, id string) error {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return nil
	}
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return nil
		}
		t = strings.Trim(strings.TrimPrefix(t, "W/"), `"`)
		if t == version {
			return nil
		}
	}
	return errPrecondition(id)
}

func etag(version string) string { return `W/"` + version + `"` }

// writeResource answers with one resource, its ETag and, for 201, Location.
func writeResource(w http.ResponseWriter, status int, doc map[string]any, version string) {
	w.Header().Set("ETag", etag(version))
	if status == http.StatusCreated {
		if meta, ok := doc["meta"].(map[string]any); ok {
			if loc, ok := meta["location"].(string); ok {
				w.Header().Set("Location", loc)
			}
		}
	}
	writeJSON(w, status, doc)
}

// renderedFull renders the resource as a create event's adminValuesAdded.
func (d *Domain) renderedFull(rt *resourceType, doc map[string]any) map[string]any {
	return defaultProjection.apply(rt, doc)
}
