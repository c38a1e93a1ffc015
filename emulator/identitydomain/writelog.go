package identitydomain

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The write log: every change the domain commits through its API, in commit
// order, with the domain's time, as the emulator's own record of what
// happened when. Tests read it to measure when a change took effect (a
// membership that disappeared at a deadline) or to see every write a client
// made, independently of the events (which may be delivered late, or not at
// all) and of the client's own account. It holds the changes that emit
// events (one entry per event); loads (Seed, Generate) and writes that
// changed nothing are not in it, and Reset does not clear it.
//
//	GET /_emulator/writes?after=SEQ   entries with Seq > SEQ (all without it)

// maxWrites is how many entries the log keeps; older ones are dropped (and
// counted in WriteLog.Dropped).
const maxWrites = 1 << 18

// Write is one committed change.
type Write struct {
	// Seq numbers the log's entries from 1, in commit order.
	Seq int64 `json:"seq"`
	// Time is the domain's clock at the commit.
	Time time.Time `json:"time"`
	// Op is the change's event type without its prefix: createuser,
	// updateuser, deleteuser, activateuser, deactivateuser,
	// updateusercapabilities, creategroup, updategroup, deletegroup,
	// addusertogroup, removeuserfromgroup.
	Op string `json:"op"`
	// ResourceID and ResourceName are the changed user or group (the group
	// of a membership change): its SCIM id and its userName or displayName
	// at the commit.
	ResourceID   string `json:"resourceId"`
	ResourceName string `json:"resourceName"`
	// RefID and RefName are a membership change's user.
	RefID   string `json:"refId,omitempty"`
	RefName string `json:"refName,omitempty"`
	// Actor is the OAuth client id that made the change.
	Actor string `json:"actor,omitempty"`
	// Added and Removed are the attribute values the change added and
	// removed, as the event's adminValuesAdded and adminValuesRemoved.
	Added   map[string]any `json:"added,omitempty"`
	Removed map[string]any `json:"removed,omitempty"`
}

// WriteLog is a page of the write log.
type WriteLog struct {
	Writes []Write `json:"writes"`
	// Last is the Seq of the newest entry (0: none yet).
	Last int64 `json:"last"`
	// Dropped counts entries no longer kept (the log holds the newest
	// 262,144).
	Dropped int64 `json:"dropped"`
}

// writeLog is the Domain's log; its zero value is ready.
type writeLog struct {
	mu      sync.Mutex
	seq     int64
	entries []Write
	dropped int64
}

// record appends a commit's changes.
func (l *writeLog) record(now time.Time, actor actorRef, changes []change) {
	if len(changes) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range changes {
		l.seq++
		w := Write{Seq: l.seq, Time: now, Op: strings.TrimPrefix(c.typ, "com.oraclecloud.identitycontrolplane."),
			ResourceID: c.res.id, ResourceName: c.res.name, Actor: actor.id, Added: c.added, Removed: c.removed}
		if c.ref != nil {
			w.RefID, w.RefName = c.ref.id, c.ref.name
		}
		l.entries = append(l.entries, w)
	}
	if over := len(l.entries) - maxWrites; over > 0 {
		l.entries = append(l.entries[:0:0], l.entries[over:]...)
		l.dropped += int64(over)
	}
}

// after returns the entries with Seq > seq.
func (l *writeLog) after(seq int64) WriteLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := WriteLog{Last: l.seq, Dropped: l.dropped, Writes: []Write{}}
	first := int64(0)
	if len(l.entries) > 0 {
		first = l.entries[0].Seq
	}
	i := max(0, int(seq-first+1))
	if i < len(l.entries) {
		out.Writes = append(out.Writes, l.entries[i:]...)
	}
	return out
}

// Writes returns the write log's entries with Seq > after (all for 0).
func (d *Domain) Writes(after int64) WriteLog { return d.writes.after(after) }

// writesFor answers GET /_emulator/writes?after=SEQ.
func (d *Domain) writesFor(r *http.Request) (WriteLog, error) {
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return WriteLog{}, errBadAfter(v)
		}
		after = n
	}
	return d.Writes(after), nil
}

type errBadAfter string

func (e errBadAfter) Error() string {
	return "after=" + strconv.Quote(string(e)) + ": want the Seq of the last entry read, a number >= 0"
}
