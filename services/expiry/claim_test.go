package expiry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/testutil"
)

// flakyKV is the grants bucket with JetStream away for a moment: once
// armed, it lets `skip` updates of one grant through and fails the next
// `fail` ones with the client's timeout. With applied, the first failing
// update is stored all the same: its answer is what was lost, as when the
// server goes away right after storing it.
type flakyKV struct {
	jetstream.KeyValue

	mu      sync.Mutex
	key     string
	skip    int
	fail    int
	applied bool
	failed  int
	onFail  func() // called at each failure
}

func (f *flakyKV) arm(grantID string, skip, fail int, applied bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key, f.skip, f.fail, f.applied, f.failed = grantKey(grantID), skip, fail, applied, 0
}

func (f *flakyKV) failures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *flakyKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	f.mu.Lock()
	hit, apply := false, false
	if key == f.key || (f.key == grantKey("*") && strings.HasPrefix(key, grantKey(""))) {
		switch {
		case f.skip > 0:
			f.skip--
		case f.fail > 0:
			f.fail--
			hit, apply = true, f.applied && f.failed == 0
			f.failed++
		}
	}
	onFail := f.onFail
	f.mu.Unlock()
	if hit && onFail != nil {
		onFail()
	}
	if !hit {
		return f.KeyValue.Update(ctx, key, value, last)
	}
	if apply {
		if _, err := f.KeyValue.Update(ctx, key, value, last); err != nil {
			return 0, err
		}
	}
	return 0, nats.ErrTimeout
}

// startWithKV runs a Service whose grants bucket is what wrap makes of it.
func (p *pipeline) startWithKV(wrap func(jetstream.KeyValue) jetstream.KeyValue) *Service {
	p.t.Helper()
	svc, _ := p.startWith(func(svc *Service) {
		st, err := svc.init(context.Background())
		if err != nil {
			p.t.Fatal(err)
		}
		st.grants.KV = wrap(st.grants.KV)
	})
	return svc
}

// startFlaky runs a Service whose grants bucket is a flakyKV.
func (p *pipeline) startFlaky() (*Service, *flakyKV) {
	p.t.Helper()
	kv := &flakyKV{}
	svc := p.startWithKV(func(b jetstream.KeyValue) jetstream.KeyValue { kv.KeyValue = b; return kv })
	return svc, kv
}

// removals counts the PatchGroup calls since before, less the adds.
func (p *pipeline) removals(before, adds int64) int64 {
	return p.domain.CallCount(emu.OpPatchGroup) - before - adds
}

// TestRevocationOutcomeSurvivesAFailedWrite: a KV write of a revocation
// that fails (JetStream away for a moment) neither delays the revocation
// by the claim's lifetime nor loses its outcome: a revoke stays a revoke
// (not an expiry recorded later, late, by the scan), an expiry is recorded
// on time, the claim is gone, and no timer counts as missed (the pipeline
// checks timers_missed).
func TestRevocationOutcomeSurvivesAFailedWrite(t *testing.T) {
	tests := []struct {
		name    string
		revoke  bool // an early revoke; else the expiry at the deadline
		skip    int  // updates let through first (1: the claim)
		fail    int
		applied bool
		// revokeFails: the revoke returns an error (the claim could not be
		// stored for sure) and the caller asks again at once.
		revokeFails bool
		// cancel: the revoke's caller gives up at the first failure.
		cancel bool
	}{
		{name: "revoke/outcome not stored", revoke: true, skip: 1, fail: 1},
		{name: "revoke/outcome stored, answer lost", revoke: true, skip: 1, fail: 1, applied: true},
		{name: "revoke/outcome fails three times", revoke: true, skip: 1, fail: 3},
		{name: "revoke/claim stored, answer lost, release fails", revoke: true, fail: 2, applied: true, revokeFails: true},
		{name: "revoke/outcome fails, caller gives up", revoke: true, skip: 1, fail: 2, cancel: true},
		{name: "expiry/outcome not stored", skip: 1, fail: 1},
		{name: "expiry/outcome stored, answer lost", skip: 1, fail: 1, applied: true},
		{name: "expiry/claim stored, answer lost, release fails", fail: 2, applied: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(t, testConfig())
			svc, kv := p.startFlaky()
			ctx := context.Background()
			before := p.domain.CallCount(emu.OpPatchGroup)
			gs := p.grantUsers(t, svc, "flk", 1, 2*time.Second, 0)
			id, uid := gs[0].g.Id, gs[0].uid
			kv.arm(id, tc.skip, tc.fail, tc.applied)
			want := iamflowv1.GrantState_GRANT_STATE_EXPIRED
			if tc.revoke {
				want = iamflowv1.GrantState_GRANT_STATE_REVOKED
				rctx, cancel := context.WithCancel(ctx)
				defer cancel()
				if tc.cancel {
					kv.mu.Lock()
					kv.onFail = cancel
					kv.mu.Unlock()
				}
				g, err := svc.revoke(rctx, id, "carol", "done early")
				if tc.revokeFails {
					if err == nil {
						t.Fatal("revoke succeeded although its claim could not be stored")
					}
					// The same replica asks again at once: its own claim
					// does not stand in its way.
					g, err = svc.revoke(ctx, id, "carol", "done early")
				}
				if err != nil {
					t.Fatalf("revoke: %v", err)
				}
				if g.State != want || p.isMember(uid) {
					t.Fatalf("after revoke: state %v, member %v", g.State, p.isMember(uid))
				}
			} else {
				// Up to two redeliveries of the due message (the consumer's
				// backoff after a failure) on top of the usual lateness:
				// well under claimTTL.
				gone := p.waitGone(uid, 10*time.Second)
				if late := gone.Sub(gs[0].g.ExpiresAt.AsTime()); late > maxLateness+2*time.Second {
					t.Errorf("membership gone %v after the deadline", late)
				}
			}
			// Past the deadline, its timer and a few scans: the outcome holds.
			deadline := gs[0].g.ExpiresAt.AsTime()
			var g *iamflowv1.Grant
			testutil.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
				var err error
				if g, err = svc.get(ctx, id); err != nil {
					return err
				}
				if tc.revoke && g.State != want {
					t.Fatalf("revoked grant became %v: %v", g.State, g.History)
				}
				if g.State != want {
					return fmt.Errorf("grant %v", g.State)
				}
				if time.Since(deadline) < maxLateness+2*svc.cfg.ScanInterval {
					return errors.New("deadline not long past")
				}
				return nil
			})
			if n := kv.failures(); n != tc.fail {
				t.Fatalf("%d updates failed, want %d: the fault did not hit the revocation", n, tc.fail)
			}
			r, _, err := svc.st.get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.claim != "" || g.LastError != "" || g.Overdue {
				t.Errorf("ended grant: claim %q, last_error %q, overdue %v", r.claim, g.LastError, g.Overdue)
			}
			last := g.History[len(g.History)-1]
			if len(g.History) != 3 || last.To != want || strings.Contains(last.Note, noteTimerMissed) {
				t.Errorf("history %v: want granted, active, then %v once, not by the scan", g.History, want)
			}
			if tc.revoke && last.Actor != "carol" {
				t.Errorf("revoked by %q, want carol", last.Actor)
			}
			if !tc.revoke {
				if late := g.EndedAt.AsTime().Sub(deadline); late > maxLateness+2*time.Second {
					t.Errorf("expiry recorded %v after the deadline", late)
				}
			}
			st := svc.Status(ctx).Counters
			if st[counterRevokedNow]+st[counterExpiredNow] != 1 || st[counterTimersMissed] != 0 {
				t.Errorf("counters: revocations %d, expirations %d, timers missed %d",
					st[counterRevokedNow], st[counterExpiredNow], st[counterTimersMissed])
			}
			if n := p.removals(before, 1); n != 1 {
				t.Errorf("%d removals, want 1", n)
			}
			action := actionExpire
			if tc.revoke {
				action = actionRevoke
			}
			if n := len(auditRecords(t, p.bus, action)); n != 1 {
				t.Errorf("%d %s audit records, want 1", n, action)
			}
		})
	}
}

// TestOwnClaimKeepsOtherReplicasOut: a claim the claimant could neither
// confirm nor release still holds for every other replica (only the
// claimant takes it over at once).
func TestOwnClaimKeepsOtherReplicasOut(t *testing.T) {
	p := newPipeline(t, testConfig())
	a, kv := p.startFlaky()
	b, _ := p.start()
	ctx := context.Background()
	before := p.domain.CallCount(emu.OpPatchGroup)
	gs := p.grantUsers(t, a, "own", 1, 4*time.Second, 0)
	kv.arm(gs[0].g.Id, 0, 2, true)
	if _, err := a.revoke(ctx, gs[0].g.Id, "carol", ""); err == nil {
		t.Fatal("revoke succeeded although its claim could not be stored")
	}
	if _, err := b.revoke(ctx, gs[0].g.Id, "dave", ""); !errors.Is(err, errClaimed) {
		t.Fatalf("another replica's revoke during the claim: %v, want %v", err, errClaimed)
	}
	if !p.isMember(gs[0].uid) {
		t.Fatal("another replica removed the membership during the claim")
	}
	g, err := a.revoke(ctx, gs[0].g.Id, "carol", "")
	if err != nil || g.State != iamflowv1.GrantState_GRANT_STATE_REVOKED {
		t.Fatalf("the claimant's retry: %v, %v", g, err)
	}
	if n := p.removals(before, 1); n != 1 {
		t.Errorf("%d removals, want 1", n)
	}
}

// TestConcurrentRevocationsActOnce: revocations of one grant from two
// replicas, two at a time in each, remove the membership once and record
// one end; the others are refused (claimed, or already ended).
func TestConcurrentRevocationsActOnce(t *testing.T) {
	p := newPipeline(t, testConfig())
	a, _ := p.start()
	b, _ := p.start()
	ctx := context.Background()
	before := p.domain.CallCount(emu.OpPatchGroup)
	gs := p.grantUsers(t, a, "conc", 1, 5*time.Second, 0)
	// A slow domain keeps the revocations overlapping.
	if err := p.domain.SetFaults(emu.Faults{Latency: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     int
		refusals []error
	)
	for _, svc := range []*Service{a, a, b, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.revoke(ctx, gs[0].g.Id, "carol", "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				done++
			case errors.Is(err, errClaimed), errors.Is(err, errPrecondition):
				refusals = append(refusals, err)
			default:
				t.Errorf("revoke: %v", err)
			}
		}()
	}
	wg.Wait()
	if done != 1 || len(refusals) != 3 {
		t.Errorf("%d revokes done, %d refused (%v): want 1 and 3", done, len(refusals), refusals)
	}
	if n := p.removals(before, 1); n != 1 {
		t.Errorf("%d removals, want 1", n)
	}
	if n := len(auditRecords(t, p.bus, actionRevoke)); n != 1 {
		t.Errorf("%d revoke audit records, want 1", n)
	}
}

// TestFailedRevocationReleasesItsClaim: a revocation that fails after its
// claim may have been stored releases the claim, so another replica (the
// due message may go to any) need not wait claimTTL for it to lapse.
func TestFailedRevocationReleasesItsClaim(t *testing.T) {
	p := newPipeline(t, testConfig())
	a, kv := p.startFlaky()
	b, _ := p.start()
	ctx := context.Background()
	gs := p.grantUsers(t, a, "rel", 1, 4*time.Second, 0)
	kv.arm(gs[0].g.Id, 0, 1, true)
	if _, err := a.revoke(ctx, gs[0].g.Id, "carol", ""); err == nil {
		t.Fatal("revoke succeeded although its claim could not be stored")
	}
	r, _, err := a.st.get(ctx, gs[0].g.Id)
	if err != nil {
		t.Fatal(err)
	}
	if r.claim != "" {
		t.Errorf("claim %q left after the failed revocation", r.claim)
	}
	g, err := b.revoke(ctx, gs[0].g.Id, "dave", "")
	if err != nil || g.State != iamflowv1.GrantState_GRANT_STATE_REVOKED || p.isMember(gs[0].uid) {
		t.Fatalf("another replica's revoke after the failure: %v, %v", g, err)
	}
}

// heldGet is the grants bucket whose next read of one grant waits until
// released, as a read does while a JetStream leader is elected.
type heldGet struct {
	jetstream.KeyValue
	mu      sync.Mutex
	key     string
	waiting chan struct{} // closed when the held read has begun
	release chan struct{}
}

func (h *heldGet) hold(grantID string) {
	h.mu.Lock()
	h.key, h.waiting, h.release = grantKey(grantID), make(chan struct{}), make(chan struct{})
	h.mu.Unlock()
}

func (h *heldGet) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	h.mu.Lock()
	held := key == h.key
	var waiting, release chan struct{}
	if held {
		h.key, waiting, release = "", h.waiting, h.release
	}
	h.mu.Unlock()
	if held {
		close(waiting)
		<-release
	}
	return h.KeyValue.Get(ctx, key)
}

// A timer that fires before its deadline (it fires early by design) only
// looks at the grant: a revoke at that moment is not refused as "being
// revoked right now", which during a NATS fault left a revoked grant to be
// recorded later as expired (the cluster proof's expiry-claim gap).
func TestEarlyTimerDoesNotBlockARevoke(t *testing.T) {
	p := newPipeline(t, testConfig())
	kv := &heldGet{}
	svc := p.startWithKV(func(b jetstream.KeyValue) jetstream.KeyValue { kv.KeyValue = b; return kv })
	p.createUser("early")
	g := grantFor(t, svc, "early", 5*time.Second)
	kv.hold(g.Id)
	checked := make(chan error, 1)
	go func() {
		_, _, err := svc.end(context.Background(), g.Id, iamflowv1.GrantState_GRANT_STATE_EXPIRED, Name, "deadline passed", true, false)
		checked <- err
	}()
	<-kv.waiting // the timer is reading the grant
	got, err := svc.revoke(context.Background(), g.Id, "tester", "no longer needed")
	close(kv.release)
	if err != nil {
		t.Fatalf("revoke while an early timer looks at the grant: %v", err)
	}
	if got.GetState() != iamflowv1.GrantState_GRANT_STATE_REVOKED {
		t.Fatalf("state %v, want revoked", got.GetState())
	}
	if err := <-checked; !errors.Is(err, errNotDue) && !errors.Is(err, errAlreadyEnded) {
		t.Fatalf("the early timer: %v, want not due (or already ended)", err)
	}
}

// A grant whose member is added while its record's write fails (JetStream
// electing a leader) is still recorded and audited: the membership is not
// left without its grant (the cluster proof found an add with no record).
func TestGrantOutlastsAFailedRecordWrite(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, kv := p.startFlaky()
	uid := p.createUser("steady")
	kv.arm("*", 0, 2, false) // the next two updates of any grant fail
	g, err := svc.grant(context.Background(), grantRequest{Domain: domainShort, Group: tempGroup, User: "steady", Duration: 5 * time.Second,
		Reason: "incident 43", Requester: "bob"})
	if err != nil {
		t.Fatalf("grant while its record's write fails twice: %v", err)
	}
	if kv.failures() != 2 {
		t.Fatalf("%d writes failed, want 2: the test proves nothing", kv.failures())
	}
	if g.GetState() != iamflowv1.GrantState_GRANT_STATE_ACTIVE || !p.isMember(uid) {
		t.Fatalf("grant %v, member %v: want active and a member", g.GetState(), p.isMember(uid))
	}
	testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n := len(auditRecords(t, p.bus, actionGrant)); n != 1 {
			return fmt.Errorf("%d grant records, want 1", n)
		}
		return nil
	})
}

// A grant whose member is added but whose record cannot be updated for
// longer than activateRetryFor fails, and the member add is audited all
// the same: the domain changed (the cluster proof found such an add
// without its record while a NATS server was cut off).
func TestGrantWhoseRecordCannotBeWrittenIsAudited(t *testing.T) {
	p := newPipeline(t, testConfig())
	svc, kv := p.startFlaky()
	uid := p.createUser("cutoff")
	kv.arm("*", 0, 1_000_000, false) // every update of any grant fails
	_, err := svc.grant(context.Background(), grantRequest{Domain: domainShort, Group: tempGroup, User: "cutoff", Duration: 5 * time.Second,
		Reason: "incident 44", Requester: "bob"})
	if err == nil {
		t.Fatal("grant succeeded while its record could not be written")
	}
	if !p.isMember(uid) {
		t.Fatalf("the member was not added (%v): the test proves nothing", err)
	}
	testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		recs := auditRecords(t, p.bus, actionGrant)
		if len(recs) != 1 || recs[0].GetRelated().GetId() != uid {
			return fmt.Errorf("%d grant records, want 1 for the member added", len(recs))
		}
		return nil
	})
}
