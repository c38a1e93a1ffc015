//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

// snapshot is a domain's content by name: what "the target equals the
// source" compares.
type snapshot struct {
	users  map[string]string   // userName -> "displayName|active"
	groups map[string][]string // displayName -> member userNames, sorted
	// dupUsers and dupGroups are names held by more than one object.
	dupUsers, dupGroups   []string
	userCount, groupCount int
}

func newSnapshot() snapshot {
	return snapshot{users: map[string]string{}, groups: map[string][]string{}}
}

func userLine(displayName string, active bool) string {
	return fmt.Sprintf("%s|%v", displayName, active)
}

// readSnapshot lists a domain through its SCIM API (the production client).
// Groups whose name skip reports true are left out.
func readSnapshot(ctx context.Context, c *identitydomain.Client, skip func(string) bool) (snapshot, error) {
	s := newSnapshot()
	names := map[string]string{}
	for u, err := range c.Users(ctx, identitydomain.ListOptions{Attributes: []string{"userName", "displayName", "active"}}) {
		if err != nil {
			return s, err
		}
		name := strings.ToLower(deref(u.UserName))
		if _, dup := s.users[name]; dup {
			s.dupUsers = append(s.dupUsers, name)
		}
		s.userCount++
		s.users[name] = userLine(deref(u.DisplayName), u.Active == nil || *u.Active)
		names[deref(u.Id)] = name
	}
	type group struct{ id, name string }
	var groups []group
	for g, err := range c.Groups(ctx, identitydomain.ListOptions{Attributes: []string{"displayName"}}) {
		if err != nil {
			return s, err
		}
		name := deref(g.DisplayName)
		if skip != nil && skip(name) {
			continue
		}
		groups = append(groups, group{deref(g.Id), name})
	}
	for _, g := range groups {
		ms := []string{}
		for m, err := range c.GroupMembers(ctx, g.id, 0) {
			if err != nil {
				return s, err
			}
			n, ok := names[deref(m.Value)]
			if !ok {
				n = "?" + deref(m.Value)
			}
			ms = append(ms, n)
		}
		sort.Strings(ms)
		key := strings.ToLower(g.name)
		if _, dup := s.groups[key]; dup {
			s.dupGroups = append(s.dupGroups, key)
		}
		s.groupCount++
		s.groups[key] = ms
	}
	return s, nil
}

// lower returns the snapshot with names lower-cased (names are unique
// case-insensitively in a domain).
func (a snapshot) lower() snapshot {
	b := newSnapshot()
	for k, v := range a.users {
		b.users[strings.ToLower(k)] = v
	}
	for k, ms := range a.groups {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = strings.ToLower(m)
		}
		sort.Strings(out)
		b.groups[strings.ToLower(k)] = out
	}
	return b
}

// diff lists how got differs from want, one line per difference.
func (want snapshot) diff(got snapshot) []string { return want.targetDiff(got, nil, nil) }

// targetDiff lists how a target (got) differs from its source (want), one
// line per difference, saying which side holds what. Users deleted in the
// source (by any name they had, deleted) may stay in the target, but only
// inactive and in no group (the link's delete policy is deactivate); a name
// a live user had before a rename (former) must be gone from the target.
func (want snapshot) targetDiff(got snapshot, deleted, former map[string]bool) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want.users)) {
		if g, ok := got.users[k]; !ok {
			out = append(out, fmt.Sprintf("user %s: missing in the target (source: %q)", k, want.users[k]))
		} else if g != want.users[k] {
			out = append(out, fmt.Sprintf("user %s: %q in the target, %q in the source (displayName|active)", k, g, want.users[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.users)) {
		if _, ok := want.users[k]; ok {
			continue
		}
		switch {
		case deleted[k]:
			if !strings.HasSuffix(got.users[k], "|false") {
				out = append(out, fmt.Sprintf("user %s: deleted in the source, still active in the target", k))
			}
		case former[k]:
			out = append(out, fmt.Sprintf("user %s: renamed in the source, the target still has this name", k))
		default:
			out = append(out, fmt.Sprintf("user %s: in the target only", k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want.groups)) {
		if g, ok := got.groups[k]; !ok {
			out = append(out, fmt.Sprintf("group %s: missing in the target", k))
		} else if !slices.Equal(g, want.groups[k]) {
			out = append(out, fmt.Sprintf("group %s: members %s", k, memberDiff(want.groups[k], g, deleted)))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.groups)) {
		if _, ok := want.groups[k]; !ok {
			out = append(out, fmt.Sprintf("group %s: in the target only", k))
		}
	}
	for _, n := range got.dupUsers {
		out = append(out, fmt.Sprintf("user %s: more than one in the target", n))
	}
	for _, n := range got.dupGroups {
		out = append(out, fmt.Sprintf("group %s: more than one in the target", n))
	}
	return out
}

// deletedIn counts the users of s that are deleted in the source.
func (s snapshot) deletedIn(deleted map[string]bool) int {
	n := 0
	for k := range s.users {
		if deleted[k] {
			n++
		}
	}
	return n
}

func memberDiff(want, got []string, deleted map[string]bool) string {
	var missing, extra, extraDeleted []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		switch {
		case slices.Contains(want, g):
		case deleted[g]:
			extraDeleted = append(extraDeleted, g)
		default:
			extra = append(extra, g)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("missing in the target %v", missing))
	}
	if len(extra) > 0 {
		parts = append(parts, fmt.Sprintf("only in the target %v", extra))
	}
	if len(extraDeleted) > 0 {
		parts = append(parts, fmt.Sprintf("users deleted in the source still members in the target %v", extraDeleted))
	}
	return strings.Join(parts, "; ")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// streamContent reads the Nats-Msg-Id of every message in a stream. Derived
// ids ("<oci id>/member_added/<user id>") count for their OCI event id.
func streamContent(ctx context.Context, natsURL, stream string) (ids map[string]int, msgs uint64, err error) {
	nc, err := nats.Connect(natsURL, nats.Name("e2e-checker"))
	if err != nil {
		return nil, 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, 0, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	msgs = info.State.Msgs
	ids = map[string]int{}
	if msgs == 0 {
		return ids, 0, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		return nil, 0, err
	}
	var seen uint64
	for seen < msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, 0, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			seen++
			id := m.Headers().Get(jetstream.MsgIDHeader)
			if i := strings.IndexByte(id, '/'); i > 0 {
				id = id[:i]
			}
			ids[id]++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, 0, err
		}
		if n == 0 {
			return nil, 0, fmt.Errorf("stream %s: read %d of %d messages, then nothing", stream, seen, msgs)
		}
	}
	return ids, msgs, nil
}

// deadLetter is one message of IAM_DLQ.
type deadLetter struct{ consumer, subject, reason string }

// deadLetters reads IAM_DLQ's headers and returns how many dead letters it
// holds, a summary by consumer with the first reasons, and every letter.
func deadLetters(ctx context.Context, natsURL string) (int, string, []deadLetter, error) {
	nc, err := nats.Connect(natsURL, nats.Name("e2e-checker"))
	if err != nil {
		return 0, "", nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, "", nil, err
	}
	st, err := js.Stream(ctx, "IAM_DLQ")
	if err != nil {
		return 0, "", nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, "", nil, err
	}
	total := int(info.State.Msgs)
	if total == 0 {
		return 0, "", nil, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		return 0, "", nil, err
	}
	var letters []deadLetter
	reasons := map[string][]string{} // consumer -> reasons
	for seen := 0; seen < total; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return 0, "", nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			h := m.Headers()
			l := deadLetter{h.Get(bus.HeaderDLQConsumer), h.Get(bus.HeaderDLQSubject), h.Get(bus.HeaderDLQReason)}
			letters = append(letters, l)
			reasons[l.consumer] = append(reasons[l.consumer], l.subject+": "+l.reason)
		}
		if n == 0 {
			break
		}
		seen += n
	}
	var b strings.Builder
	for _, c := range slices.Sorted(maps.Keys(reasons)) {
		rs := reasons[c]
		fmt.Fprintf(&b, "  %s: %d, first: %s\n", c, len(rs), strings.Join(rs[:min(3, len(rs))], " | "))
	}
	return total, b.String(), letters, nil
}
