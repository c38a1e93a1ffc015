package replicator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/scimtest/misbehave"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// site is one emulated domain with iamflow's client and an administrator's.
type site struct {
	name   string
	emu    *emu.Domain
	client *identitydomain.Client // iamflow's
	human  *identitydomain.Client // an administrator's
	// double, when set, stands between iamflow's client and the emulator,
	// misbehaving as told (the administrator talks to the emulator).
	double *misbehave.Server
}

// pipeline is the whole path: emulated domains post their events to the
// real ingest webhook, which publishes to a real JetStream, which the
// replicator consumes, reading and writing the emulated domains through the
// real client.
type pipeline struct {
	t       testing.TB
	srv     *bustest.Server
	bus     *bus.Bus
	webhook string
	sites   map[string]*site
	cfg     Config
	svc     *Service
	stop    func()
}

// pipelineOpts shape a pipeline.
type pipelineOpts struct {
	tier    emu.Tier
	limited bool // the client applies the tier's rate limits
	noRun   bool // build the service but do not run it
	// faults puts a misbehaving double between iamflow and the named domains.
	faults map[string]misbehave.Faults
	// sites replaces the named domains by what the function makes (a SCIM
	// server somebody else wrote); their events are not delivered.
	sites map[string]func(t testing.TB) *site
}

// newPipeline starts domains named in cfg's links, ingest for all of them,
// and the replicator.
func newPipeline(t testing.TB, cfg Config, o pipelineOpts) *pipeline {
	t.Helper()
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	p := &pipeline{t: t, srv: srv, bus: b, sites: map[string]*site{}, cfg: cfg}
	var names []string
	for _, l := range cfg.Links {
		for _, n := range append([]string{l.Source}, l.Targets...) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	p.webhook = pipelinetest.Webhook(t, b, names...)
	if o.tier == "" {
		o.tier = emu.TierUnlimited
	}
	for _, n := range names {
		if mk := o.sites[n]; mk != nil {
			p.sites[n] = mk(t)
			continue
		}
		e := pipelinetest.Emulator(t, n, o.tier, p.webhook)
		st := &site{name: n, emu: e, client: newClient(t, e, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, o.limited),
			human: newClient(t, e, pipelinetest.HumanClientID, pipelinetest.HumanSecret, false)}
		if f, ok := o.faults[n]; ok {
			st.double = misbehave.New(e.Handler(), f)
			ts := httptest.NewServer(st.double)
			t.Cleanup(ts.Close)
			st.client = newClientURL(t, n, ts.URL, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, o.limited)
		}
		p.sites[n] = st
	}
	p.svc = p.newService()
	if !o.noRun {
		p.start()
	}
	return p
}

// newService builds a replicator over the pipeline's bus and domains.
func (p *pipeline) newService(opts ...servicekit.Option) *Service {
	p.t.Helper()
	domains := map[string]Domain{}
	opts = append([]servicekit.Option{servicekit.WithLogger(pipelinetest.Logger(p.t))}, opts...)
	for n, s := range p.sites {
		domains[n] = s.client
	}
	svc, err := New(context.Background(), p.cfg, p.bus, domains, opts...)
	if err != nil {
		p.t.Fatal(err)
	}
	return svc
}

// start runs the service until the test ends or stop is called.
func (p *pipeline) start() {
	p.t.Helper()
	p.stop = pipelinetest.Run(p.t, p.svc)
}

// newClient is the real Identity Domains client for the emulator; limited
// says whether it applies the tier's rate limits (else none).
func newClient(t testing.TB, d *emu.Domain, id, sec string, limited bool) *identitydomain.Client {
	t.Helper()
	return newClientURL(t, d.Config().Name, d.URL(), id, sec, limited)
}

// newClientURL is newClient for a domain at url.
func newClientURL(t testing.TB, name, url, id, sec string, limited bool) *identitydomain.Client {
	t.Helper()
	cfg := pipelinetest.ClientConfig(t, url, id, sec, limited)
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 4, BaseDelay: 20 * time.Millisecond, MaxDelay: 2 * time.Second}
	cfg.Breaker = identitydomain.BreakerConfig{Failures: 5, Cooldown: 500 * time.Millisecond}
	return pipelinetest.Client(t, name, cfg)
}

// settled waits until every domain delivered every event it emitted and
// every consumer handled everything.
func (p *pipeline) settled() {
	p.t.Helper()
	p.settledWithin(30*time.Second, 10*time.Millisecond)
}

// settledWithin is settled with a deadline and a polling interval of its
// own (rate-limited runs).
func (p *pipeline) settledWithin(within, every time.Duration) {
	p.t.Helper()
	domains := map[string]*emu.Domain{}
	for n, s := range p.sites {
		if s.emu != nil {
			domains[n] = s.emu
		}
	}
	pipelinetest.Settled(p.t, within, every, p.svc, len(p.svc.targetDomains()), domains)
}

// snapshot is a domain's content by name, for comparing domains.
type snapshot struct {
	users  map[string]string   // userName -> "displayName|active"
	groups map[string]string   // displayName -> description
	member map[string][]string // group displayName -> member userNames, sorted
}

func snap(d *emu.Domain) snapshot {
	s := snapshot{users: map[string]string{}, groups: map[string]string{}, member: map[string][]string{}}
	for _, u := range d.Users() {
		s.users[u.UserName] = fmt.Sprintf("%s|%v", u.DisplayName, u.Active)
	}
	for _, g := range d.Groups() {
		s.groups[g.DisplayName] = g.Description
		ms, _ := d.Members(g.ID)
		names := []string{}
		for _, m := range ms {
			names = append(names, m.UserName)
		}
		sort.Strings(names)
		s.member[g.DisplayName] = names
	}
	return s
}

// diff describes how b differs from a, "" when they are equal.
func (a snapshot) diff(b snapshot) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a.users)) {
		if b.users[k] != a.users[k] {
			out = append(out, fmt.Sprintf("user %s: %q, want %q", k, b.users[k], a.users[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b.users)) {
		if _, ok := a.users[k]; !ok {
			out = append(out, fmt.Sprintf("user %s: extra", k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a.groups)) {
		if v, ok := b.groups[k]; !ok || v != a.groups[k] {
			out = append(out, fmt.Sprintf("group %s: description %q (present %v), want %q", k, v, ok, a.groups[k]))
		}
		if !slices.Equal(a.member[k], b.member[k]) {
			out = append(out, fmt.Sprintf("group %s: members %v, want %v", k, b.member[k], a.member[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b.groups)) {
		if _, ok := a.groups[k]; !ok {
			out = append(out, fmt.Sprintf("group %s: extra", k))
		}
	}
	if len(out) > 12 {
		out = append(out[:12], fmt.Sprintf("... and %d more", len(out)-12))
	}
	return strings.Join(out, "\n")
}

// converged waits until target holds what source holds.
func (p *pipeline) converged(source, target string, within time.Duration) {
	p.t.Helper()
	testutil.CheckFor(p.t, within, 10*time.Millisecond, func() error {
		if d := snap(p.sites[source].emu).diff(snap(p.sites[target].emu)); d != "" {
			return fmt.Errorf("%s differs from %s:\n%s", target, source, d)
		}
		return nil
	})
}

// post delivers one raw OCI event to the webhook, as Notifications would.
func (p *pipeline) post(body []byte) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.webhook, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.SetBasicAuth(pipelinetest.WebhookUser, pipelinetest.WebhookPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		p.t.Fatalf("webhook answered %d", resp.StatusCode)
	}
}

// auditRecords returns the replicator's audit records so far.
func auditRecords(t testing.TB, b *bus.Bus) []*iamflowv1.AuditRecord {
	t.Helper()
	return pipelinetest.AuditRecords(t, b, Name, "*")
}

// Helpers for changes made by the human administrator.

func sp(s string) *string { return &s }

func (s *site) createUser(t testing.TB, name, display string) string {
	t.Helper()
	u, _, err := s.human.CreateUser(context.Background(), identitydomains.User{UserName: sp(name), DisplayName: sp(display),
		Name:   &identitydomains.UserName{GivenName: sp(strings.Split(display, " ")[0]), FamilyName: sp("Tester")},
		Emails: []identitydomains.UserEmails{{Value: sp(name + "@example.com"), Type: identitydomains.UserEmailsTypeWork, Primary: new(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	return *u.Id
}

func (s *site) createGroup(t testing.TB, name, desc string) string {
	t.Helper()
	g := identitydomains.Group{DisplayName: sp(name)}
	if desc != "" {
		g.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup = &identitydomains.ExtensionGroupGroup{Description: sp(desc)}
	}
	out, _, err := s.human.CreateGroup(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	return *out.Id
}

func (s *site) patchGroup(t testing.TB, id string, ops ...identitydomains.Operations) {
	t.Helper()
	if _, _, err := s.human.PatchGroup(context.Background(), id, "", ops...); err != nil {
		t.Fatal(err)
	}
}

func (s *site) patchUser(t testing.TB, id string, ops ...identitydomains.Operations) {
	t.Helper()
	if _, _, err := s.human.PatchUser(context.Background(), id, "", ops...); err != nil {
		t.Fatal(err)
	}
}

func (s *site) add(t testing.TB, group string, users ...string) {
	t.Helper()
	if _, err := s.human.AddMembers(context.Background(), group, users...); err != nil {
		t.Fatal(err)
	}
}

// burst adds every user to every group, one member at a time, with a
// goroutine per group (an administrator's changes as fast as the domain
// takes them), and returns when all are added.
func (s *site) burst(t testing.TB, groups, users []string) {
	t.Helper()
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() {
			for _, u := range users {
				if _, err := s.human.AddMembers(context.Background(), g, u); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func (s *site) remove(t testing.TB, group string, users ...string) {
	t.Helper()
	if _, err := s.human.RemoveMembers(context.Background(), group, users...); err != nil {
		t.Fatal(err)
	}
}

func (s *site) deleteGroups(t testing.TB, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := s.human.DeleteGroup(context.Background(), id, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// reconcileLink runs a full reconcile of the link now (a dry run when
// dryRun); an error fails the test.
func (p *pipeline) reconcileLink(link string, dryRun bool) []*iamflowv1.ReconcileReport {
	p.t.Helper()
	reps, err := p.svc.ReconcileLink(context.Background(), link, dryRun)
	if err != nil {
		p.t.Fatal(err)
	}
	return reps
}

// reconcileWritesNothing runs a full reconcile of the link and fails the
// test if it wrote to tgt (a Bulk request counts as a write): after a
// reconcile or the events have brought tgt in step, the next finds nothing
// to do.
func (p *pipeline) reconcileWritesNothing(link string, tgt *site) {
	p.t.Helper()
	count := func() int64 { return writes(tgt.emu) + tgt.emu.CallCount(emu.OpBulk) }
	before := count()
	reps := p.reconcileLink(link, false)
	if w := count() - before; w != 0 {
		p.t.Errorf("the reconcile after wrote %d times: %v", w, reps[0].Actions)
	}
}

// writes counts the write calls a domain answered.
func writes(d *emu.Domain) int64 {
	var n int64
	for _, op := range []emu.Operation{emu.OpCreateUser, emu.OpCreateGroup, emu.OpPatchUser, emu.OpPatchGroup,
		emu.OpDeleteUser, emu.OpDeleteGroup, emu.OpPutUser, emu.OpPutGroup} {
		n += d.CallCount(op)
	}
	return n
}

// calls counts every API request a domain answered, tokens excepted (a
// Bulk request is one, whatever it carries).
func calls(d *emu.Domain) int64 {
	st := d.Stats()
	n := -st.BulkOperations
	for op, c := range st.Calls {
		if op != emu.OpToken {
			n += c
		}
	}
	return n
}

// link is a test link from src to the targets.
func link(name, src string, targets ...string) planner.Link {
	return planner.Link{Name: name, Source: src, Targets: targets}
}

func config(links ...planner.Link) Config {
	cfg := DefaultConfig()
	cfg.Links = links
	return cfg
}
