package servicekit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/testutil"
)

type fakeAuditor struct {
	err  error
	recs []*iamflowv1.AuditRecord
}

func (a *fakeAuditor) Record(_ context.Context, r *iamflowv1.AuditRecord) error {
	if a.err != nil {
		return a.err
	}
	a.recs = append(a.recs, r)
	return nil
}

type batchFake struct {
	fakeAuditor
	batches int
}

func (a *batchFake) RecordBatch(ctx context.Context, rs []*iamflowv1.AuditRecord) error {
	a.batches++
	for _, r := range rs {
		if err := a.Record(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func TestAuditBatch(t *testing.T) {
	recs := []*iamflowv1.AuditRecord{{Action: "a"}, {Action: "b"}}
	plain := &fakeAuditor{}
	k, _ := New("svc", nil, WithAuditWriter(plain))
	if err := k.AuditBatch(context.Background(), recs); err != nil || len(plain.recs) != 2 {
		t.Fatalf("one by one: %v, %d stored", err, len(plain.recs))
	}
	plain.err = errors.New("no JetStream")
	if err := k.AuditBatch(context.Background(), recs); err == nil || !strings.Contains(err.Error(), "2 of 2 records not stored") {
		t.Fatalf("failed batch: %v", err)
	}
	batch := &batchFake{}
	k, _ = New("svc", nil, WithAuditWriter(batch))
	if err := k.AuditBatch(context.Background(), recs); err != nil || batch.batches != 1 || len(batch.recs) != 2 {
		t.Fatalf("batched: %v, %d batches, %d stored", err, batch.batches, len(batch.recs))
	}
}

func TestNewNeedsAnAuditSink(t *testing.T) {
	if _, err := New("svc", nil); err == nil || !strings.Contains(err.Error(), "svc: no bus and no audit writer") {
		t.Fatalf("New without bus or auditor = %v", err)
	}
	k, err := New("svc", nil, WithAuditWriter(&fakeAuditor{}), WithVersion("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if k.State() != iamflowv1.State_STATE_STARTING || k.Version() != "v1" || k.Log() == nil || k.Tracer() == nil {
		t.Fatalf("kit %+v", k)
	}
}

// TestRunLifecycle: RUNNING while the loops run, a second Run refused,
// STOPPING then a clean return when the context ends, loops stopped.
func TestRunLifecycle(t *testing.T) {
	k, err := New("svc", nil, WithAuditWriter(&fakeAuditor{}))
	if err != nil {
		t.Fatal(err)
	}
	var loopEnded atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- k.Run(ctx, func(context.Context) (Work, error) {
			return Work{Loops: []func(context.Context){func(ctx context.Context) { <-ctx.Done(); loopEnded.Store(true) }}}, nil
		})
	}()
	testutil.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		if k.State() != iamflowv1.State_STATE_RUNNING {
			return fmt.Errorf("state %v", k.State())
		}
		return nil
	})
	if err := k.Run(ctx, func(context.Context) (Work, error) { return Work{}, nil }); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Run = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !loopEnded.Load() || k.State() != iamflowv1.State_STATE_STOPPING {
		t.Fatalf("loop ended %v, state %v", loopEnded.Load(), k.State())
	}
}

func TestRunStartFailureIsRecorded(t *testing.T) {
	k, _ := New("svc", nil, WithAuditWriter(&fakeAuditor{}))
	boom := errors.New("create consumer: boom")
	err := k.Run(context.Background(), func(context.Context) (Work, error) { return Work{}, boom })
	if !errors.Is(err, boom) || err.Error() != "svc: create consumer: boom" {
		t.Fatalf("Run = %v", err)
	}
	if st := k.Report(context.Background(), k.Status(nil)); st.LastError != boom.Error() {
		t.Fatalf("last error %q", st.LastError)
	}
}

// TestFailingConsumerStopsTheService: a consumer that fails (its bus is
// gone) stops the loops too, and Run returns its error.
func TestFailingConsumerStopsTheService(t *testing.T) {
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	k, _ := New("svc", b)
	c, err := b.Consumer(context.Background(), bus.ConsumerConfig{Durable: "svc"}, func(context.Context, *bus.Msg) bus.Result { return bus.Done() })
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	done := make(chan error, 1)
	go func() {
		done <- k.Run(context.Background(), func(context.Context) (Work, error) {
			return Work{Consumers: []*bus.Consumer{c}, Loops: []func(context.Context){func(ctx context.Context) { <-ctx.Done() }}}, nil
		})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.HasPrefix(err.Error(), "svc: ") {
			t.Fatalf("Run = %v, want the consumer's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its consumer failed")
	}
}

func TestStatusAndReport(t *testing.T) {
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	k, _ := New("svc", b, WithClock(clock), WithVersion("v2"))
	c, err := b.Consumer(context.Background(), bus.ConsumerConfig{Durable: "svc"}, func(context.Context, *bus.Msg) bus.Result { return bus.Done() })
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(90 * time.Second)
	k.Event("ev-1")
	st := k.Report(context.Background(), k.Status(map[string]int64{"events": 1}), c, nil)
	if st.Name != "svc" || st.Version != "v2" || st.Uptime.AsDuration() != 90*time.Second || st.Counters["events"] != 1 ||
		st.LastEventId != "ev-1" || len(st.Consumers) != 1 || st.Consumers[0].Name != "svc" || st.LastError != "" {
		t.Fatalf("status %v", st)
	}
	// An unreadable consumer: DEGRADED when running, and the last error.
	srv.Shutdown()
	st = k.Status(nil)
	st.State = iamflowv1.State_STATE_RUNNING
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	k.Report(ctx, st, c)
	if st.State != iamflowv1.State_STATE_DEGRADED || st.LastError == "" || len(st.Consumers) != 0 {
		t.Fatalf("status with NATS away %v", st)
	}
}

func TestAuditFailureIsLoggedAndRemembered(t *testing.T) {
	a := &fakeAuditor{}
	k, _ := New("svc", nil, WithAuditWriter(a))
	if k.Audit(context.Background(), &iamflowv1.AuditRecord{Action: "x"}) != nil || len(a.recs) != 1 {
		t.Fatal("record not stored")
	}
	a.err = errors.New("no JetStream")
	if k.Audit(context.Background(), &iamflowv1.AuditRecord{Action: "y"}, "user", "u1") == nil {
		t.Fatal("a failed record reported stored")
	}
	if st := k.Report(context.Background(), k.Status(nil)); st.LastError != "no JetStream" {
		t.Fatalf("last error %q", st.LastError)
	}
}

func TestAPIErrors(t *testing.T) {
	errMissing := errors.New("missing")
	errBusy := errors.New("busy")
	m := APIErrors{}.Map(codes.NotFound, errMissing).Map(codes.FailedPrecondition, errBusy)
	for _, tc := range []struct {
		m    APIErrors
		err  error
		want codes.Code
	}{
		{m, fmt.Errorf("x: %w", errMissing), codes.NotFound},
		{m, fmt.Errorf("x: %w", errBusy), codes.FailedPrecondition},
		{m, status.Error(codes.InvalidArgument, "bad"), codes.InvalidArgument},
		{m, fmt.Errorf("x: %w", context.Canceled), codes.Canceled},
		{m, fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{m, errors.New("other"), codes.Unavailable},
		{m, bus.Permanent(errors.New("refused")), codes.Unavailable},
		{m.Permanent(codes.FailedPrecondition), bus.Permanent(errors.New("refused")), codes.FailedPrecondition},
		{m.Permanent(codes.FailedPrecondition), bus.Permanent(errMissing), codes.NotFound},
		{m.Otherwise(codes.Internal), errors.New("other"), codes.Internal},
	} {
		got := tc.m.Status(tc.err)
		if _, isStatus := status.FromError(tc.err); isStatus && got != tc.err {
			t.Errorf("status error %v not passed through: %v", tc.err, got)
		}
		if status.Code(got) != tc.want || (!strings.HasPrefix(tc.err.Error(), "rpc error") && status.Convert(got).Message() != tc.err.Error()) {
			t.Errorf("Status(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if m.Status(nil) != nil {
		t.Error("Status(nil) is not nil")
	}
}

func TestPageSize(t *testing.T) {
	for _, tc := range []struct {
		n, want int
		ok      bool
	}{{-1, 0, false}, {0, 100, true}, {1, 1, true}, {1000, 1000, true}, {1001, 1000, true}} {
		if got, ok := PageSize(tc.n, 100, 1000); got != tc.want || ok != tc.ok {
			t.Errorf("PageSize(%d, 100, 1000) = %d, %v; want %d, %v", tc.n, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEndpoint(t *testing.T) {
	hs := health.NewServer()
	e := NewEndpoint(healthpb.RegisterHealthServer, func(ctx context.Context, mux *runtime.ServeMux, s healthpb.HealthServer) error {
		if s != hs {
			return errors.New("another server")
		}
		return nil
	}, healthpb.HealthServer(hs))
	g := grpc.NewServer()
	e.Register(g)
	if _, ok := g.GetServiceInfo()["grpc.health.v1.Health"]; !ok {
		t.Fatal("service not registered")
	}
	if err := e.Gateway(context.Background(), runtime.NewServeMux()); err != nil {
		t.Fatal(err)
	}
}
