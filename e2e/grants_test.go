//go:build linux

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

// The temporary groups: one in the target (the replicator leaves it alone)
// and one in the source, which the replicator copies to the target like any
// group, so a grant there must show up, and end, in the target too.
const (
	tgtTempGroup = "Temp-Admins"
	srcTempGroup = "Oncall-Admins"
)

// How late after its deadline a membership may go, outages aside: where
// iamflow removes it itself (measured in that domain's write log), and in
// the target a source grant is replicated to.
const (
	directLateness     = 2 * time.Second
	replicatedLateness = 5 * time.Second
)

// madeGrant is a grant the granter made.
type madeGrant struct {
	id, domain, group  string
	srcUserID          string // the driver's user (pinned while the grant lasts)
	tgtUserID          string // the same user in the target
	expires, revokeAt  time.Time
	revokeCall         grantCall
	revoked, unpinning bool
	// failedRevoke is a revoke call that failed: it may have removed the
	// membership all the same.
	failedRevoke *grantCall
}

// grantCall is one `iamflow grant` call.
type grantCall struct {
	what       string
	start, end time.Time
	err        error
	// add is the grant a failed `grant add` asked for: the server may have
	// made it all the same (the call timed out in an outage).
	add *madeGrant
	// userName is the user the call named.
	userName string
}

// granter adds temporary grants through `iamflow grant add` while the
// changes flow, alternately in the target's and the source's temporary
// group, and revokes some of them early.
type granter struct {
	s        *stackT
	drv      *driver
	src, tgt *identitydomain.Client

	mu     sync.Mutex
	made   map[string]*madeGrant
	failed []grantCall
	// byScanInCrash counts grants the expiry service's safety scan ended
	// because their deadline fell into a NATS outage (see check).
	byScanInCrash int
}

func (g *granter) run(ctx context.Context, stop <-chan struct{}) {
	g.made = map[string]*madeGrant{}
	tick := time.NewTicker(1500 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			// Revoke the remaining early ones now, then stop.
			for _, m := range g.open() {
				if !m.revokeAt.IsZero() && !m.revoked {
					g.revoke(ctx, m)
				}
			}
			return
		case <-tick.C:
		}
		now := time.Now()
		for _, m := range g.open() {
			if !m.revokeAt.IsZero() && !m.revoked && now.After(m.revokeAt) {
				g.revoke(ctx, m)
			}
			end := m.expires
			if m.revoked {
				end = m.revokeCall.end
			}
			if now.After(end.Add(15 * time.Second)) {
				g.mu.Lock()
				m.unpinning = true
				g.mu.Unlock()
				g.drv.unpin(m.srcUserID)
			}
		}
		srcID, name := g.drv.pin()
		if srcID == "" {
			continue
		}
		tu, found, err := g.tgt.FindUserByName(ctx, name)
		if err != nil || !found {
			g.drv.unpin(srcID) // not replicated yet
			continue
		}
		n++
		domain, group := "tgt", tgtTempGroup
		if n%2 == 0 {
			domain, group = "src", srcTempGroup
		}
		dur := time.Duration(8+n%5*4) * time.Second
		call := grantCall{what: fmt.Sprintf("grant add %s/%s %s", domain, group, name), start: time.Now()}
		out, err := g.s.cli(ctx, "grant", "add", "--domain", domain, "--group", group, "--user", name,
			"--for", dur.String(), "--reason", "e2e proof", "--requester", "e2e", "--json", "--timeout", "10s",
			"--addr", g.s.grpcAddr("expiry"))
		call.end = time.Now()
		var gr iamflowv1.Grant
		if err == nil {
			if err = protojson.Unmarshal(out, &gr); err != nil {
				err = fmt.Errorf("grant add --json: %v: %s", err, out)
			}
		}
		if err != nil {
			// The grant may exist all the same: the user stays pinned.
			call.err, call.userName = err, name
			call.add = &madeGrant{domain: domain, group: group, srcUserID: srcID, tgtUserID: deref(tu.Id), unpinning: true}
			g.mu.Lock()
			g.failed = append(g.failed, call)
			g.mu.Unlock()
			continue
		}
		m := &madeGrant{id: gr.GetId(), domain: domain, group: group, srcUserID: srcID, tgtUserID: deref(tu.Id),
			expires: gr.GetExpiresAt().AsTime()}
		if n%3 == 0 {
			m.revokeAt = time.Now().Add(dur / 2)
		}
		g.mu.Lock()
		g.made[m.id] = m
		g.mu.Unlock()
	}
}

// open returns the grants whose user is still pinned.
func (g *granter) open() []*madeGrant {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*madeGrant
	for _, m := range g.made {
		if !m.unpinning {
			out = append(out, m)
		}
	}
	return out
}

func (g *granter) revoke(ctx context.Context, m *madeGrant) {
	if time.Now().After(m.expires.Add(-time.Second)) {
		// Too late to revoke early (the loop waited on a slow call): it
		// expires on its own.
		g.mu.Lock()
		m.revokeAt = time.Time{}
		g.mu.Unlock()
		return
	}
	call := grantCall{what: "grant revoke " + m.id, start: time.Now()}
	_, err := g.s.cli(ctx, "grant", "revoke", m.id, "--reason", "e2e early revoke", "--timeout", "10s",
		"--addr", g.s.grpcAddr("expiry"))
	call.end, call.err = time.Now(), err
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.failed = append(g.failed, call)
		m.revokeAt = time.Time{} // it ends at its deadline instead
		m.failedRevoke = &call   // unless the call did it all the same
		return
	}
	m.revoked, m.revokeCall = true, call
}

// check waits until no grant is active any more, then checks every grant
// against the domains' own write logs: the membership went at the deadline,
// not before and not late (beyond what an outage explains), or when the
// test revoked it; a source grant also reached the target and left it in
// time; no grant needed the safety scan; the temporary groups are empty;
// and every failed grant call fell into a NATS outage. It returns a summary
// line.
func (g *granter) check(ctx context.Context) string {
	t := g.s.t
	var list iamflowv1.ListGrantsResponse
	err := waitFor(3*time.Minute, time.Second, func() error {
		out, err := g.s.cli(ctx, "grant", "list", "--json", "--addr", g.s.grpcAddr("expiry"))
		if err != nil {
			return err
		}
		list.Reset()
		if err := protojson.Unmarshal(out, &list); err != nil {
			return fmt.Errorf("grant list --json: %v", err)
		}
		for _, gr := range list.GetGrants() {
			switch gr.GetState() {
			case iamflowv1.GrantState_GRANT_STATE_ACTIVE, iamflowv1.GrantState_GRANT_STATE_PENDING:
				return fmt.Errorf("grant %s is still %v (expires %v)", gr.GetId(), gr.GetState(), gr.GetExpiresAt().AsTime().Format(time.RFC3339))
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("grants did not all end: %v", err)
	}
	// The event path catches up before the replicated memberships are
	// judged, so that "never removed there" means never (how late it was
	// is measured from the write logs either way).
	if err := waitFor(2*time.Minute, 200*time.Millisecond, func() error {
		for _, d := range []string{"src", "tgt"} {
			if st, err := emulatorStats(ctx, g.s.urls[d]); err != nil || st.Events.Pending > 0 {
				return fmt.Errorf("%s: events pending (%v)", d, err)
			}
		}
		if n, err := g.s.replicatorBacklog(ctx); err != nil || n > 0 {
			return fmt.Errorf("replicator backlog %d (%v)", n, err)
		}
		return nil
	}); err != nil {
		t.Errorf("before the grants are checked, the event path did not settle: %v", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()

	for _, c := range g.failed {
		if o, ok := g.s.during(c.start, c.end, "nats"); ok {
			t.Logf("%s failed during %s: %v", c.what, o, c.err)
			continue
		}
		t.Errorf("%s failed at %s, outside any NATS outage: %v", c.what, c.start.Format("15:04:05.000"), c.err)
	}

	logs := map[string][]emu.Write{}
	for _, d := range []string{"src", "tgt"} {
		var l emu.WriteLog
		if err := getJSON(ctx, g.s.urls[d]+"/_emulator/writes", &l); err != nil {
			t.Errorf("read %s's write log: %v", d, err)
			return "write logs unreadable"
		}
		if l.Dropped > 0 {
			t.Errorf("%s's write log dropped %d entries", d, l.Dropped)
		}
		logs[d] = l.Writes
	}
	tgtOncall, found, err := g.tgt.FindGroupByName(ctx, srcTempGroup)
	if err != nil || !found {
		t.Errorf("%s in tgt: found %v, %v (the replicator copies it from src)", srcTempGroup, found, err)
	}

	states := map[string]int{}
	var direct, replicated, reached, delivered []time.Duration
	for _, gr := range list.GetGrants() {
		st := strings.ToLower(strings.TrimPrefix(gr.GetState().String(), "GRANT_STATE_"))
		states[st]++
		m := g.made[gr.GetId()]
		if m == nil {
			m = g.fromFailedCall(gr)
		}
		if m == nil {
			t.Errorf("grant %s (%s/%s, %s, source %s): the test did not make it", gr.GetId(), gr.GetDomain(), gr.GetGroupName(), gr.GetUserName(), gr.GetSource())
			continue
		}
		what := fmt.Sprintf("grant %s (%s/%s, %s)", gr.GetId(), gr.GetDomain(), gr.GetGroupName(), gr.GetUserName())
		// Ended by the safety scan, not by its timer: a fault, unless the
		// deadline fell into a NATS outage. A single nats-server killed
		// with SIGKILL can lose a delivery its consumer had not finished
		// (the timer's due message, held back until the deadline), and
		// then the scan is what ends the grant. A cluster with replicated
		// streams must not (shape.strictTimers).
		byScan := false
		for _, h := range gr.GetHistory() {
			if !strings.Contains(h.GetNote(), "safety scan removed") {
				continue
			}
			byScan = true
			o, inOutage := g.s.during(m.expires.Add(-2*time.Second), m.expires, "nats")
			switch {
			case inOutage && !g.s.shape.strictTimers:
				g.byScanInCrash++
				t.Logf("%s: ended by expiry's safety scan; its deadline fell into %s, whose SIGKILL can lose the timer's delivery", what, o)
			case inOutage && g.s.clustered():
				g.byScanInCrash++
				g.s.tolerate(gapFor(o), "%s: ended by expiry's safety scan; its deadline fell into %s", what, o)
			default:
				t.Errorf("%s: %s", what, h.GetNote())
			}
		}
		added, removed, ok := membershipSpan(logs[m.domain], gr.GetGroupId(), gr.GetUserId(), gr.GetCreatedAt().AsTime())
		switch {
		case !ok:
			t.Errorf("%s: %s's write log has no addition of the membership after the grant was made", what, m.domain)
			continue
		case removed.IsZero():
			t.Errorf("%s: ended %v, but %s's write log has no removal of the membership", what, gr.GetState(), m.domain)
			continue
		}
		// ends is when the membership had to go: the deadline, or the revoke call.
		var ends time.Time
		switch gr.GetState() {
		case iamflowv1.GrantState_GRANT_STATE_EXPIRED:
			ends = m.expires
			late := removed.Sub(m.expires)
			if c := m.failedRevoke; late < 0 && c != nil && !removed.Before(c.start) && !removed.After(c.end) {
				// A revoke call that failed removed it all the same: the
				// grant's record lost the revocation (recorded as expired).
				g.s.tolerate(gapExpiryClaim, "%s: removed at %s by the revoke call that failed (%s to %s: %v), then recorded as expired",
					what, removed.Format("15:04:05.000"), c.start.Format("15:04:05.000"), c.end.Format("15:04:05.000"), c.err)
				ends = removed
				break
			}
			if late < 0 {
				t.Errorf("%s: membership removed %v BEFORE its deadline %s", what, -late, m.expires.Format("15:04:05.000"))
			}
			allowed := g.s.allowDirect(m.expires, byScan)
			o, inFault := g.s.inFault(m.expires.Add(-2*time.Second), m.expires)
			switch {
			case late > allowed && inFault && late <= allowed+claimNet:
				g.s.tolerate(gapFor(o), "%s: membership removed %v after its deadline, which fell into %s (allowed %v without the gap)",
					what, late.Round(time.Millisecond), o, allowed)
			case late > allowed:
				t.Errorf("%s: membership removed %v after its deadline %s (allowed %v; %s)", what, late.Round(time.Millisecond),
					m.expires.Format("15:04:05.000"), allowed, g.s.lastFault(m.expires))
			case late > directLateness:
				t.Logf("%s: membership removed %v after its deadline, within the %v a NATS outage allows", what, late.Round(time.Millisecond), allowed)
			}
			direct = append(direct, late)
		case iamflowv1.GrantState_GRANT_STATE_REVOKED:
			call, until := m.revokeCall, m.revokeCall.end
			if !m.revoked && m.failedRevoke != nil {
				// The call's answer was lost in an outage, but the service
				// finished the revocation (it retries its final write until
				// stored, within the claim's lifetime).
				call, until = *m.failedRevoke, m.failedRevoke.end.Add(claimNet)
				t.Logf("%s: revoked by the call that failed (%v)", what, call.err)
			}
			ends = call.end
			if !m.revoked && m.failedRevoke == nil {
				t.Errorf("%s was revoked, but the test did not revoke it", what)
			} else if removed.Before(call.start) || removed.After(until) {
				t.Errorf("%s: membership removed at %s, outside the revoke call (%s to %s)", what, removed.Format("15:04:05.000"),
					call.start.Format("15:04:05.000"), until.Format("15:04:05.000"))
			}
		default:
			t.Errorf("%s ended %v: %s", what, gr.GetState(), gr.GetLastError())
			continue
		}
		if m.domain != "src" || tgtOncall.Id == nil {
			continue
		}
		// The replicated membership in the target. Its lateness is counted
		// from when ingest acknowledged the removal's event: before that it
		// was on its way from the domain (OCI's share, reported apart).
		tAdded, tRemoved, ok := membershipSpan(logs["tgt"], *tgtOncall.Id, m.tgtUserID, gr.GetCreatedAt().AsTime())
		switch {
		case !ok && g.s.overlapsOutage(added, removed) && removed.Sub(added) < g.s.allowReplicated(added):
			// Level-triggered: a membership that lived in the source, while
			// an outage held the replicator back, for less than that outage
			// lets it fall behind, was gone when the replicator read the group.
			o, _ := g.s.during(added.Add(-2*time.Second), removed)
			t.Logf("%s: lived %v in src (%s to %s), during the %s outage (%s to %s), and was gone before the replicator looked: never in tgt",
				what, removed.Sub(added).Round(time.Millisecond), added.Format("15:04:05.000"), removed.Format("15:04:05.000"),
				o.name, o.from.Format("15:04:05.000"), o.to.Format("15:04:05.000"))
			continue
		case !ok:
			t.Errorf("%s: the membership never reached tgt (tgt's write log has no addition to %s; it lived in src from %s to %s): iamflow's own change in the source was not replicated",
				what, srcTempGroup, added.Format("15:04:05.000"), removed.Format("15:04:05.000"))
			continue
		case tRemoved.IsZero():
			t.Errorf("%s: the membership reached tgt after %v and was never removed there", what, tAdded.Sub(added).Round(time.Millisecond))
			continue
		}
		reached = append(reached, tAdded.Sub(added))
		if late := tRemoved.Sub(ends); late < 0 && gr.GetState() == iamflowv1.GrantState_GRANT_STATE_EXPIRED {
			t.Errorf("%s: membership removed in tgt %v BEFORE its deadline", what, -late)
		}
		from := removed
		if at, ok := g.s.rec.ackedAfter(eventKey{"src", "removeuserfromgroup", gr.GetGroupId(), gr.GetUserId()}, removed); ok {
			from = at
			delivered = append(delivered, at.Sub(removed))
		}
		// Negative when the replicator learned of the removal from another
		// event first (it reads the group's members whole): on time.
		late := max(0, tRemoved.Sub(from))
		allowed := g.s.allowReplicated(from)
		o, inFault := g.s.inFault(from.Add(-2*time.Second), from.Add(replicatedLateness))
		switch {
		case late > allowed && inFault && late <= allowed+claimNet:
			g.s.tolerate(gapFor(o), "%s: membership removed in tgt %v after ingest stored its removal in src, during %s (allowed %v without the gap)",
				what, late.Round(time.Millisecond), o, allowed)
		case late > allowed:
			t.Errorf("%s: membership removed in tgt %v after ingest stored its removal in src at %s (allowed %v; %s)", what, late.Round(time.Millisecond),
				from.Format("15:04:05.000"), allowed, g.s.lastFault(from))
		case late > replicatedLateness:
			t.Logf("%s: membership removed in tgt %v after ingest stored its removal in src, within the %v an outage allows", what, late.Round(time.Millisecond), allowed)
		}
		replicated = append(replicated, late)
	}
	if len(list.GetGrants()) < len(g.made) {
		t.Errorf("iamflow lists %d grants, the test made %d", len(list.GetGrants()), len(g.made))
	}
	bySide := map[string]int{}
	for _, m := range g.made {
		bySide[m.domain]++
	}
	if bySide["src"] == 0 || bySide["tgt"] == 0 {
		t.Errorf("grants made: %v; the proof needs some in both temporary groups (failed calls: %d)", bySide, len(g.failed))
	}
	for _, d := range []struct {
		c           *identitydomain.Client
		domain, grp string
	}{{g.tgt, "tgt", tgtTempGroup}, {g.src, "src", srcTempGroup}} {
		grp, found, err := d.c.FindGroupByName(ctx, d.grp)
		if err != nil || !found {
			t.Errorf("temporary group %s/%s: found %v, %v", d.domain, d.grp, found, err)
			continue
		}
		var left []string
		for m, err := range d.c.GroupMembers(ctx, deref(grp.Id), 0) {
			if err != nil {
				t.Errorf("members of %s/%s: %v", d.domain, d.grp, err)
				break
			}
			left = append(left, deref(m.Value))
		}
		if len(left) != 0 {
			t.Errorf("temporary group %s/%s still has members %v after every grant ended", d.domain, d.grp, left)
		}
	}
	return fmt.Sprintf("%d made (src %d, tgt %d), final states %v; membership gone after the deadline in the domain: %s; "+
		"in tgt after ingest stored its end in src: %s (the event's way from src to ingest: %s); src grants reached tgt within %s; %d grant calls failed; "+
		"%d ended by expiry's safety scan after the NATS SIGKILL",
		len(g.made), bySide["src"], bySide["tgt"], states, durStats(direct), durStats(replicated), durStats(delivered), durStats(reached), len(g.failed), g.byScanInCrash)
}

// fromFailedCall returns the grant a failed `grant add` asked for if gr is
// it (the call failed, the server made it): same domain, group and user,
// made during the call or soon after. d.mu is held.
func (g *granter) fromFailedCall(gr *iamflowv1.Grant) *madeGrant {
	for i, c := range g.failed {
		created := gr.GetCreatedAt().AsTime()
		if c.add == nil || c.add.id != "" || c.add.domain != gr.GetDomain() || !strings.EqualFold(c.add.group, gr.GetGroupName()) ||
			!strings.EqualFold(c.userName, gr.GetUserName()) || created.Before(c.start.Add(-time.Second)) || created.After(c.end.Add(time.Minute)) {
			continue
		}
		m := *c.add
		m.id, m.expires = gr.GetId(), gr.GetExpiresAt().AsTime()
		g.failed[i].add = &m
		g.made[m.id] = &m
		g.s.t.Logf("grant %s was made by the call that failed: %s", m.id, c.what)
		return &m
	}
	return nil
}

// membershipSpan finds in a write log the first addition of user to group
// at or after since, and the first removal after that (zero if none).
func membershipSpan(log []emu.Write, group, user string, since time.Time) (added, removed time.Time, ok bool) {
	since = since.Add(-time.Second) // the grant's record is written just before the member is added
	for _, w := range log {
		if w.ResourceID != group || w.RefID != user || w.Time.Before(since) {
			continue
		}
		switch {
		case w.Op == "addusertogroup" && !ok:
			added, ok = w.Time, true
		case w.Op == "removeuserfromgroup" && ok:
			return added, w.Time, true
		}
	}
	return added, time.Time{}, ok
}

// gapFor is the known gap that explains lateness in a cluster fault.
func gapFor(outage) knownGap { return gapExpiryClaim }

// durStats is "n=N p50=X max=Y".
func durStats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("n=%d p50=%v max=%v", len(s), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}
