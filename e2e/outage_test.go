//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
	"google.golang.org/protobuf/encoding/protojson"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/identitydomain"
)

// outageThreshold is the services' after_outage in TestLongOutage (the
// default is 5m): the outage here lasts seconds, standing for hours.
const outageThreshold = 3 * time.Second

// TestLongOutage: NATS is away for longer than the emulated OCI
// Notifications retries a delivery (Faults.GiveUpAfter), so every change
// made meanwhile in both domains is lost on the way; once NATS is back,
// iamflow must find and repair each of them by itself, without an event
// and without a restart: the replicator the target, the dbprovisioner the
// database, the capabilities service a user created in the target, the
// expiry service a membership added to a temporary group. It reports how
// long each repair took, from the moment NATS was ready again.
func TestLongOutage(tt *testing.T) {
	t := startProof(tt, "the long outage proof takes a minute; run it with make e2e-cluster")
	ctx := t.Context()
	s := newStack(t, shape{natsNodes: 1, replicas: 1, afterOutage: outageThreshold})
	s.up()
	src := newClient(t, "src", s.urls["src"], "e2e-driver", s.clientSecret, s.dir)
	tgt := newClient(t, "tgt", s.urls["tgt"], "iamflow", s.clientSecret, s.dir)
	person := newClient(t, "tgt", s.urls["tgt"], "admin", s.clientSecret, s.dir) // someone at the target's console

	// A small directory, replicated and provisioned before the outage.
	b := &builder{t: t, ctx: ctx, c: src, users: map[string]string{}, groups: map[string]string{}}
	for _, u := range []string{"ann", "ben", "cid", "eve"} {
		b.user(u)
	}
	for _, g := range append(slices.Clone(dbGroups), "Team-A", "Team-B") {
		b.group(g)
	}
	b.add("DB-Readers", "ann", "eve")
	b.add("DB-Writers", "ben")
	b.add("Team-A", "ann", "ben")
	b.add("Team-B", "ben", "cid")
	none := map[string]bool{}
	if _, diff := s.settle(ctx, src, tgt, none, none); len(diff) > 0 {
		t.Fatalf("before the outage the target does not equal the source:\n%s", head(diff, 10))
	}
	s.checkCatalog(ctx, src, none, none)
	eve, found, err := tgt.FindUserByName(ctx, b.name("eve"))
	if err != nil || !found {
		t.Fatalf("eve in tgt: %v, %v", found, err)
	}
	temp, found, err := tgt.FindGroupByName(ctx, tgtTempGroup)
	if err != nil || !found {
		t.Fatalf("%s in tgt: %v, %v", tgtTempGroup, found, err)
	}

	// OCI gives up after two failed attempts (instead of 2 hours of them).
	for _, d := range []string{"src", "tgt"} {
		postJSON(t, s.urls[d]+"/_emulator/faults", `{"giveUpAfter": 2}`)
	}
	before := map[string]int64{}
	for _, d := range []string{"src", "tgt"} {
		st, err := emulatorStats(ctx, s.urls[d])
		if err != nil {
			t.Fatal(err)
		}
		before[d] = st.Events.Emitted
	}
	away := time.Now()
	s.procs["nats"].kill()
	s.natsProxy.Cut("")

	// What happens meanwhile, and is never delivered.
	b.user("dan")
	b.add("Team-A", "dan")
	b.add("DB-Readers", "dan")
	b.remove("DB-Readers", "ann")
	b.rename("ben", "ben-r1")
	b.deactivate("cid")
	b.deleteGroup("Team-B")
	b.group("Team-C")
	b.add("Team-C", "ann")
	b.renameGroup("Team-A", "Team-A2")
	direct := "outage-direct@e2e.example.com"
	du, _, err := person.CreateUser(ctx, identitydomains.User{UserName: ptr(direct), DisplayName: ptr("Made in the target"),
		Name:   &identitydomains.UserName{GivenName: ptr("Made"), FamilyName: ptr("Direct")},
		Emails: []identitydomains.UserEmails{{Value: ptr(direct), Type: identitydomains.UserEmailsTypeWork, Primary: ptr(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := person.AddMembers(ctx, deref(temp.Id), deref(eve.Id)); err != nil {
		t.Fatal(err)
	}
	// Every delivery meanwhile is given up.
	var lost int64
	if err := waitFor(2*time.Minute, 200*time.Millisecond, func() error {
		lost = 0
		for _, d := range []string{"src", "tgt"} {
			st, err := emulatorStats(ctx, s.urls[d])
			if err != nil {
				return err
			}
			if st.Events.Pending > 0 {
				return fmt.Errorf("%s: %d deliveries still retried", d, st.Events.Pending)
			}
			if st.Events.Delivered+st.Events.GaveUp < st.Events.Emitted {
				return fmt.Errorf("%s: %+v", d, st.Events)
			}
			if got, want := st.Events.Emitted-before[d], st.Events.GaveUp; got != want {
				return fmt.Errorf("%s: %d events emitted during the outage, %d given up", d, got, want)
			}
			lost += st.Events.GaveUp
		}
		return nil
	}); err != nil {
		t.Fatalf("OCI did not give up every delivery made during the outage: %v", err)
	}
	for _, d := range []string{"src", "tgt"} {
		postJSON(t, s.urls[d]+"/_emulator/faults", `{"giveUpAfter": 0}`)
	}
	// ingest's NATS client keeps what it could not publish in its
	// reconnect buffer and sends it when NATS is back, though ingest
	// answered 503: events OCI gave up on would still arrive, by luck, as
	// long as that process lives. Over hours it does not (a restart, a
	// rescheduled pod, a full buffer): it is replaced here.
	s.procs["ingest"].kill()
	s.rec.setTarget("ingest", "")
	// The outage outlasts the services' threshold (the outage itself, not a
	// wait for something to happen).
	if d := time.Until(away.Add(outageThreshold + time.Second)); d > 0 {
		<-time.After(d)
	}
	s.startNode(0)
	if err := s.tryStartService("ingest"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	s.mu.Lock()
	s.outages = append(s.outages, outage{name: "nats", from: away, to: back}, outage{name: "ingest", from: away, to: back})
	s.mu.Unlock()
	t.Logf("NATS away %v; %d events given up by the domains meanwhile", back.Sub(away).Round(time.Millisecond), lost)

	// Each service repairs what it missed, on its own.
	deleted, former := map[string]bool{}, map[string]bool{strings.ToLower(b.name("ben")): true}
	repairs := []struct {
		what  string
		check func() error
		took  time.Duration
		err   error
	}{
		{what: "replicator: the target equals the source", check: func() error {
			want, err1 := readSnapshot(ctx, src, nil)
			got, err2 := readSnapshot(ctx, tgt, isTemp)
			if err := cmpErr(err1, err2); err != nil {
				return err
			}
			d := slices.DeleteFunc(want.lower().targetDiff(got, deleted, former), func(l string) bool {
				return strings.HasPrefix(l, "user "+direct+":") // made in the target, not replicated
			})
			if len(d) > 0 {
				return fmt.Errorf("%d differences, first: %s", len(d), d[0])
			}
			return nil
		}},
		{what: "dbprovisioner: the database matches the mapping", check: func() error {
			var open, locked, gone int
			return s.catalogDiff(ctx, src, deleted, former, &open, &locked, &gone)
		}},
		{what: "capabilities: the user made in the target follows the policy", check: func() error {
			caps, err := tgt.GetCapabilities(ctx, deref(du.Id))
			if err != nil {
				return err
			}
			if deref(caps.CanUseApiKeys) || deref(caps.CanUseAuthTokens) {
				return fmt.Errorf("%s may use API keys %v, auth tokens %v; the policy says neither", direct,
					deref(caps.CanUseApiKeys), deref(caps.CanUseAuthTokens))
			}
			return nil
		}},
		{what: "expiry: the membership added to " + tgtTempGroup + " while NATS was away has a grant", check: func() error {
			out, err := s.cli(ctx, "grant", "list", "--json", "--addr", s.grpcAddr("expiry"))
			if err != nil {
				return err
			}
			var list iamflowv1.ListGrantsResponse
			if err := protojson.Unmarshal(out, &list); err != nil {
				return err
			}
			for _, g := range list.GetGrants() {
				if g.GetUserId() == deref(eve.Id) && g.GetGroupId() == deref(temp.Id) {
					return nil
				}
			}
			return fmt.Errorf("no grant for %s in %s: the membership would never end", b.name("eve"), tgtTempGroup)
		}},
	}
	const patience = 2 * time.Minute
	_ = waitFor(patience, time.Second, func() error {
		pending := 0
		for i := range repairs {
			r := &repairs[i]
			if r.took > 0 {
				continue
			}
			if r.err = r.check(); r.err == nil {
				r.took = time.Since(back)
				continue
			}
			pending++
		}
		if pending > 0 {
			return fmt.Errorf("%d repairs pending", pending)
		}
		return nil
	})
	var lines []string
	for _, r := range repairs {
		if r.took > 0 {
			lines = append(lines, fmt.Sprintf("%s: repaired %v after NATS was back", r.what, r.took.Round(time.Millisecond)))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: NOT repaired after %v: %v", r.what, patience, r.err))
		t.Errorf("%s: not repaired %v after NATS was back, though no event will ever tell: %v", r.what, patience, r.err)
	}
	t.Logf("after NATS was away %v and OCI gave up %d deliveries:\n%s", back.Sub(away).Round(time.Millisecond), lost, strings.Join(lines, "\n"))
}

// builder makes named changes in a domain and remembers ids.
type builder struct {
	t             *proofT
	ctx           context.Context
	c             *identitydomain.Client
	users, groups map[string]string // short name -> id
	names         map[string]string // short name -> userName now
}

func (b *builder) name(short string) string {
	if n, ok := b.names[short]; ok {
		return n
	}
	return short + "@e2e.example.com"
}

func (b *builder) user(short string) {
	n := b.name(short)
	u, _, err := b.c.CreateUser(b.ctx, identitydomains.User{UserName: ptr(n), DisplayName: ptr(short),
		Name:   &identitydomains.UserName{GivenName: ptr(short), FamilyName: ptr("E2e")},
		Emails: []identitydomains.UserEmails{{Value: ptr(n), Type: identitydomains.UserEmailsTypeWork, Primary: ptr(true)}}})
	if err != nil {
		b.t.Fatalf("create user %s: %v", n, err)
	}
	b.users[short] = deref(u.Id)
}

func (b *builder) group(name string) {
	g, _, err := b.c.CreateGroup(b.ctx, identitydomains.Group{DisplayName: ptr(name)})
	if err != nil {
		b.t.Fatalf("create group %s: %v", name, err)
	}
	b.groups[name] = deref(g.Id)
}

func (b *builder) add(group string, users ...string) {
	var ids []string
	for _, u := range users {
		ids = append(ids, b.users[u])
	}
	if _, err := b.c.AddMembers(b.ctx, b.groups[group], ids...); err != nil {
		b.t.Fatalf("add %v to %s: %v", users, group, err)
	}
}

func (b *builder) remove(group, user string) {
	if _, err := b.c.RemoveMembers(b.ctx, b.groups[group], b.users[user]); err != nil {
		b.t.Fatalf("remove %s from %s: %v", user, group, err)
	}
}

func (b *builder) rename(short, to string) {
	n := to + "@e2e.example.com"
	if _, _, err := b.c.PatchUser(b.ctx, b.users[short], "", identitydomain.Replace("userName", n)); err != nil {
		b.t.Fatalf("rename %s: %v", short, err)
	}
	if b.names == nil {
		b.names = map[string]string{}
	}
	b.names[short] = n
}

func (b *builder) deactivate(short string) {
	if _, _, err := b.c.PatchUser(b.ctx, b.users[short], "", identitydomain.Replace("active", false)); err != nil {
		b.t.Fatalf("deactivate %s: %v", short, err)
	}
}

func (b *builder) renameGroup(name, to string) {
	if _, _, err := b.c.PatchGroup(b.ctx, b.groups[name], "", identitydomain.Replace("displayName", to)); err != nil {
		b.t.Fatalf("rename group %s: %v", name, err)
	}
	b.groups[to] = b.groups[name]
}

func (b *builder) deleteGroup(name string) {
	if _, err := b.c.DeleteGroup(b.ctx, b.groups[name], ""); err != nil {
		b.t.Fatalf("delete group %s: %v", name, err)
	}
	delete(b.groups, name)
}

// postJSON POSTs body to url and fails the test unless it answers 200.
func postJSON(t *proofT, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s: %s", url, body, resp.Status)
	}
}
