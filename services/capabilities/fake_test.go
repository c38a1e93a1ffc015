package capabilities

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

// fakeDir is an in-memory Directory that counts its calls.
type fakeDir struct {
	mu       sync.Mutex
	users    []*User // in listing order
	reads    int
	lists    int // pages
	puts     []putCall
	pageSize int
	// hideReads makes the next reads of a user id answer not found (the JIT race).
	hideReads map[string]int
	// readErr and putErr, when set, fail every read or write.
	readErr, putErr error
	// onPage is called before each page is served (tests observe progress).
	onPage func(page int)
}

type putCall struct {
	id    string
	flags Flags
}

func newFakeDir(users ...User) *fakeDir {
	d := &fakeDir{hideReads: map[string]int{}, pageSize: 50}
	for _, u := range users {
		d.add(u)
	}
	return d
}

func (d *fakeDir) add(u User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cp := u
	cp.Flags = u.Flags.clone()
	cp.Groups = slices.Clone(u.Groups)
	d.users = append(d.users, &cp)
}

func (d *fakeDir) find(ref UserRef) *User {
	for _, u := range d.users {
		if (ref.ID != "" && u.ID == ref.ID) || (ref.ID == "" && ref.OCID != "" && u.OCID == ref.OCID) ||
			(ref.ID == "" && ref.OCID == "" && ref.Name != "" && u.UserName == ref.Name) {
			return u
		}
	}
	return nil
}

func (d *fakeDir) ReadUser(_ context.Context, ref UserRef, withGroups bool) (User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	if d.readErr != nil {
		return User{}, d.readErr
	}
	if n := d.hideReads[ref.String()]; n > 0 {
		d.hideReads[ref.String()] = n - 1
		return User{}, fmt.Errorf("fake: %w", ErrNotFound)
	}
	u := d.find(ref)
	if u == nil {
		return User{}, fmt.Errorf("fake: user %s: %w", ref, ErrNotFound)
	}
	return snapshot(u, withGroups), nil
}

func snapshot(u *User, withGroups bool) User {
	cp := *u
	cp.Flags = u.Flags.clone()
	cp.Groups = nil
	if withGroups {
		cp.Groups = slices.Clone(u.Groups)
		if cp.Groups == nil {
			cp.Groups = []string{}
		}
	}
	return cp
}

func (d *fakeDir) Users(ctx context.Context, withGroups bool) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		for start, page := 0, 0; ; start, page = start+d.pageSize, page+1 {
			if err := ctx.Err(); err != nil {
				yield(User{}, err)
				return
			}
			if d.onPage != nil {
				d.onPage(page)
			}
			d.mu.Lock()
			d.lists++
			if d.readErr != nil {
				err := d.readErr
				d.mu.Unlock()
				yield(User{}, err)
				return
			}
			var batch []User
			for _, u := range d.users[min(start, len(d.users)):min(start+d.pageSize, len(d.users))] {
				batch = append(batch, snapshot(u, withGroups))
			}
			d.mu.Unlock()
			for _, u := range batch {
				if !yield(u, nil) {
					return
				}
			}
			if len(batch) < d.pageSize {
				return
			}
		}
	}
}

func (d *fakeDir) CountUsers(context.Context) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.users), nil
}

func (d *fakeDir) SetCapabilities(_ context.Context, id string, f Flags) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.puts = append(d.puts, putCall{id: id, flags: f.clone()})
	if d.putErr != nil {
		return d.putErr
	}
	u := d.find(UserRef{ID: id})
	if u == nil {
		return fmt.Errorf("fake: put %s: %w", id, ErrNotFound)
	}
	u.Flags = u.Flags.overlay(f)
	return nil
}

func (d *fakeDir) user(t testing.TB, id string) User {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.find(UserRef{ID: id})
	if u == nil {
		t.Fatalf("no user %s", id)
	}
	return snapshot(u, true)
}

func (d *fakeDir) calls() (reads, lists int, puts []putCall) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads, d.lists, slices.Clone(d.puts)
}

// allTrue is a user's flags as OCI gives them to a new user.
func allTrue() Flags {
	return Flags{ptr(true), ptr(true), ptr(true), ptr(true), ptr(true), ptr(true), ptr(true)}
}

// newTestService builds a service on fakes, without a bus.
func newTestService(t testing.TB, cfg Config, dirs map[string]Directory, opts ...servicekit.Option) (*Service, *testutil.Auditor) {
	t.Helper()
	a := &testutil.Auditor{}
	s, err := build(cfg, nil, dirs, append([]servicekit.Option{servicekit.WithAuditWriter(a)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

// msg wraps an event as the consumer delivers it.
func msg(t testing.TB, ev *iamflowv1.IdentityEvent, delivered uint64) *bus.Msg {
	t.Helper()
	m := pipelinetest.EventMsg(t, ev)
	return &bus.Msg{Subject: m.Subject, Data: m.Data, NumDelivered: delivered, StreamSeq: delivered, Timestamp: time.Now()}
}

func userEvent(id, domain, userID string, a iamflowv1.Action) *iamflowv1.IdentityEvent {
	return &iamflowv1.IdentityEvent{Id: id, Domain: domain, Kind: iamflowv1.Kind_KIND_USER, Action: a,
		Resource: &iamflowv1.Resource{Id: userID, Type: "User"}}
}

func memberEvent(id, domain, groupID, userID string, a iamflowv1.Action) *iamflowv1.IdentityEvent {
	return &iamflowv1.IdentityEvent{Id: id, Domain: domain, Kind: iamflowv1.Kind_KIND_MEMBERSHIP, Action: a,
		Resource: &iamflowv1.Resource{Id: groupID, Type: "Group"}, Related: &iamflowv1.Resource{Id: userID, Type: "User"}}
}
