// Package audit writes the records of what services did to IAM_AUDIT, one
// record per action, each tied to the event and trace that caused it.
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
)

// Outcomes of an audited action.
const (
	OutcomeDone    = "done"
	OutcomeFailed  = "failed"
	OutcomeDryRun  = "dry_run"
	OutcomeSkipped = "skipped"
)

// ContentType is the Content-Type header of stored records.
const ContentType = "application/x-protobuf; messageType=iamflow.v1.AuditRecord"

// Writer stores audit records through a bus.
type Writer struct {
	bus     *bus.Bus
	service string
	now     func() time.Time
}

// NewWriter returns a Writer that records actions of the named service.
func NewWriter(b *bus.Bus, service string) *Writer {
	return &Writer{bus: b, service: service, now: time.Now}
}

// Record stores r in IAM_AUDIT on iam.audit.<service>.<action>, filling the
// service, the time and the trace id from ctx when r leaves them empty.
func (w *Writer) Record(ctx context.Context, r *iamflowv1.AuditRecord) error {
	if r.Service == "" {
		r.Service = w.service
	}
	if r.Time == nil {
		r.Time = timestamppb.New(w.now())
	}
	if r.TraceId == "" {
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			r.TraceId = sc.TraceID().String()
		}
	}
	data, err := proto.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", r.Service, r.Action, err)
	}
	hdr := nats.Header{}
	hdr.Set("Content-Type", ContentType)
	if err := w.bus.PublishAudit(ctx, r.Service, r.Action, data, hdr); err != nil {
		return fmt.Errorf("audit %s %s: %w", r.Service, r.Action, err)
	}
	return nil
}

// RecordBatch stores every record of rs as Record does, publishing them
// together and waiting for every acknowledgement: one round trip for many
// records (a full reconcile writes thousands). The error says how many were
// not stored.
func (w *Writer) RecordBatch(ctx context.Context, rs []*iamflowv1.AuditRecord) error {
	if len(rs) == 0 {
		return nil
	}
	msgs := make([]bus.OutMsg, 0, len(rs))
	for _, r := range rs {
		if r.Service == "" {
			r.Service = w.service
		}
		if r.Time == nil {
			r.Time = timestamppb.New(w.now())
		}
		if r.TraceId == "" {
			if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
				r.TraceId = sc.TraceID().String()
			}
		}
		data, err := proto.Marshal(r)
		if err != nil {
			return fmt.Errorf("audit %s %s: %w", r.Service, r.Action, err)
		}
		hdr := nats.Header{}
		hdr.Set("Content-Type", ContentType)
		msgs = append(msgs, bus.OutMsg{Msg: &nats.Msg{Subject: bus.AuditSubject(r.Service, r.Action), Data: data, Header: hdr}})
	}
	if _, err := w.bus.PublishBatch(ctx, msgs); err != nil {
		return fmt.Errorf("audit batch of %d: %w", len(rs), err)
	}
	return nil
}

// Decode reads a stored record.
func Decode(data []byte) (*iamflowv1.AuditRecord, error) {
	r := &iamflowv1.AuditRecord{}
	if err := proto.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode audit record: %w", err)
	}
	return r, nil
}
