package audit

import (
	"context"
	"testing"

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
