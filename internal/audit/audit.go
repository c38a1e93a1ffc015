// Package audit writes the records of what services did to IAM_AUDIT, one
// record per action, each tied to the event and trace that caused it.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	data, err := w.encode(ctx, r)
	if err != nil {
		return err
	}
	hdr := recordHeader()
	if err := bus.Outlast(ctx, retryFor, attemptTimeout, func(ctx context.Context) error {
		return w.bus.PublishAudit(ctx, r.Service, r.Action, data, hdr)
	}); err != nil {
		return fmt.Errorf("audit %s %s: %w", r.Service, r.Action, err)
	}
	return nil
}

// encode fills in the service, the time and the trace id from ctx where r
// leaves them empty, and marshals r.
func (w *Writer) encode(ctx context.Context, r *iamflowv1.AuditRecord) ([]byte, error) {
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
		return nil, fmt.Errorf("audit %s %s: %w", r.Service, r.Action, err)
	}
	return data, nil
}

// recordHeader is a record's header: its content type and a message id of
// its own, so that a publish repeated after a lost acknowledgement is
// stored once (IAM_AUDIT's duplicate window).
func recordHeader() nats.Header {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	hdr := nats.Header{}
	hdr.Set("Content-Type", ContentType)
	hdr.Set(jetstream.MsgIDHeader, "audit-"+hex.EncodeToString(b))
	return hdr
}

// retryFor is how long a record is tried (bus.Outlast): the action it
// records is done already. Each attempt waits attemptTimeout for its
// acknowledgement.
const (
	retryFor       = 10 * time.Second
	attemptTimeout = 2 * time.Second
)

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
		data, err := w.encode(ctx, r)
		if err != nil {
			return err
		}
		msgs = append(msgs, bus.OutMsg{Msg: &nats.Msg{Subject: bus.AuditSubject(r.Service, r.Action), Data: data, Header: recordHeader()}})
	}
	// A batch repeated after a partial failure stores each record once
	// (each carries its own message id).
	if err := bus.Outlast(ctx, retryFor, attemptTimeout, func(ctx context.Context) error {
		_, err := w.bus.PublishBatch(ctx, msgs)
		return err
	}); err != nil {
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
