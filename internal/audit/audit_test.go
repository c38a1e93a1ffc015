package audit

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
)

func TestRecordIsStoredWithTraceAndTime(t *testing.T) {
	b := bustest.RunServer(t).Open(t)
	w := NewWriter(b, "capabilities")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	err := w.Record(ctx, &iamflowv1.AuditRecord{
		Action: "set_capabilities", Domain: "hub", Outcome: OutcomeDone,
		Resource: &iamflowv1.Resource{Id: "u1", Name: "jane"}, Before: map[string]string{"canUseApiKeys": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.JetStream().Stream(context.Background(), bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "iam.audit.capabilities.set_capabilities")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Decode(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if r.GetService() != "capabilities" || r.GetTraceId() != tid.String() || r.GetTime() == nil || r.GetResource().GetName() != "jane" {
		t.Fatalf("stored record = %v", r)
	}
	if err := w.Record(ctx, &iamflowv1.AuditRecord{Action: "two words"}); err == nil {
		t.Fatal("an action that is not a subject token was accepted")
	}
}

// A record whose publish fails while JetStream is away (a leader election,
// a restart) is tried again until it is stored, and stored once.
func TestRecordOutlastsAnOutage(t *testing.T) {
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	w := NewWriter(b, "replicator")
	ctx := context.Background()
	srv.Shutdown()
	done := make(chan error, 1)
	go func() {
		done <- w.Record(ctx, &iamflowv1.AuditRecord{Action: "create_user", Outcome: "applied", Resource: &iamflowv1.Resource{Id: "u1"}})
	}()
	time.Sleep(500 * time.Millisecond) // JetStream stays away a while (not synchronisation)
	srv.Restart(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("record during a short outage: %v", err)
		}
	case <-time.After(2 * retryFor):
		t.Fatal("the record was not stored after JetStream came back")
	}
	s, err := b.JetStream().Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("IAM_AUDIT holds %d records, want 1", n)
	}
}
