package servicekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/telemetry"
)

// Auditor stores audit records; *audit.Writer is one. One that also has
// RecordBatch (as *audit.Writer does) stores a batch in one round trip
// (see [Kit.AuditBatch]).
type Auditor interface {
	Record(ctx context.Context, r *iamflowv1.AuditRecord) error
}

// batchAuditor is an Auditor that stores many records at once.
type batchAuditor interface {
	RecordBatch(ctx context.Context, rs []*iamflowv1.AuditRecord) error
}

// Option configures a service: every service takes the same ones.
type Option func(*options)

type options struct {
	log        *slog.Logger
	tel        *telemetry.Telemetry
	registerer prometheus.Registerer
	auditor    Auditor
	now        func() time.Time
	version    string
}

// WithLogger sets the logger (default: the telemetry's, else discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithTelemetry sets the tracer provider (and the default logger).
func WithTelemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.tel = t } }

// WithRegisterer registers the service's Prometheus metrics on r (default:
// none are exported).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithAuditWriter sets where audit records go (default: an audit.Writer on
// the service's bus, recording under the service's name).
func WithAuditWriter(a Auditor) Option { return func(o *options) { o.auditor = a } }

// WithClock sets the clock of status, audit records and whatever the
// service times (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithVersion sets the version reported in status.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// Kit is one service's shared parts, made by [New].
type Kit struct {
	name       string
	log        *slog.Logger
	tel        *telemetry.Telemetry
	tracer     trace.Tracer
	registerer prometheus.Registerer
	auditor    Auditor
	now        func() time.Time
	version    string
	started    time.Time

	state   atomic.Int32 // iamflowv1.State
	running atomic.Bool
	last    Last
}

// New resolves opts for the service called name (its name in status,
// logs, audit records and the tracer's). b carries the audit records unless
// WithAuditWriter says otherwise; without either New fails. The state is
// STARTING until [Kit.Run] runs the service.
func New(name string, b *bus.Bus, opts ...Option) (*Kit, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.tel == nil {
		o.tel = telemetry.Noop()
	}
	if o.log == nil {
		o.log = o.tel.Logger
	}
	if o.auditor == nil {
		if b == nil {
			return nil, fmt.Errorf("%s: no bus and no audit writer", name)
		}
		o.auditor = audit.NewWriter(b, name)
	}
	k := &Kit{
		name: name, log: o.log, tel: o.tel, registerer: o.registerer, auditor: o.auditor,
		tracer: o.tel.TracerProvider.Tracer("github.com/iamflow/iamflow/services/" + name),
		now:    o.now, version: o.version, started: o.now(),
	}
	k.state.Store(int32(iamflowv1.State_STATE_STARTING))
	return k, nil
}

// Name is the service's name.
func (k *Kit) Name() string { return k.name }

// Log is the service's logger.
func (k *Kit) Log() *slog.Logger { return k.log }

// Telemetry is the service's telemetry (tracing, HTTP instrumentation).
func (k *Kit) Telemetry() *telemetry.Telemetry { return k.tel }

// Tracer is the service's tracer.
func (k *Kit) Tracer() trace.Tracer { return k.tracer }

// Registerer is where the service registers its metrics; nil registers
// nothing.
func (k *Kit) Registerer() prometheus.Registerer { return k.registerer }

// Auditor is the service's audit sink.
func (k *Kit) Auditor() Auditor { return k.auditor }

// Now is the service's clock.
func (k *Kit) Now() time.Time { return k.now() }

// Clock is the service's clock as a function, for the parts it hands it to.
func (k *Kit) Clock() func() time.Time { return k.now }

// Version is the version reported in status.
func (k *Kit) Version() string { return k.version }

// State is the service's state.
func (k *Kit) State() iamflowv1.State { return iamflowv1.State(k.state.Load()) }

// Event records the event handled last.
func (k *Kit) Event(id string) { k.last.Event(id, k.now()) }

// Error records err as the last error. Errors hold names, ids and server
// messages, never credentials.
func (k *Kit) Error(err error) { k.last.Error(err, k.now()) }

// Audit stores rec. A record that cannot be stored is logged with attrs
// and becomes the last error, and its error is returned for the caller to
// count; nothing else is done about it: the change the record describes is
// made already, and JetStream being unreachable shows in the consumers too.
func (k *Kit) Audit(ctx context.Context, rec *iamflowv1.AuditRecord, attrs ...any) error {
	err := k.auditor.Record(ctx, rec)
	if err != nil {
		k.Error(err)
		k.log.ErrorContext(ctx, "audit record not stored", append([]any{"error", err}, attrs...)...)
	}
	return err
}

// AuditBatch stores recs, in one round trip when the auditor can, and
// returns the error for the caller to log and count (a full reconcile
// writes thousands of records; one failure covers them all).
func (k *Kit) AuditBatch(ctx context.Context, recs []*iamflowv1.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if b, ok := k.auditor.(batchAuditor); ok {
		return b.RecordBatch(ctx, recs)
	}
	for i, r := range recs {
		if err := k.auditor.Record(ctx, r); err != nil {
			return fmt.Errorf("audit batch: %d of %d records not stored: %w", len(recs)-i, len(recs), err)
		}
	}
	return nil
}

// Work is what a service runs once started: its consumers and its
// background loops (sweeps, scans, schedules). Loops run until their
// context ends.
type Work struct {
	Consumers []*bus.Consumer
	Loops     []func(ctx context.Context)
}

// Run is a service's Run. It refuses a second Run while one is in
// progress, sets the state STARTING and calls start to create the
// consumers and loops, then runs them until ctx ends or a consumer fails,
// which stops the others. The state is RUNNING meanwhile and STOPPING
// while they drain. An error of start or of a consumer is recorded as the
// last error and returned as "<name>: ..."; a clean stop returns nil.
func (k *Kit) Run(ctx context.Context, start func(ctx context.Context) (Work, error)) error {
	if !k.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: already running", k.name)
	}
	defer k.running.Store(false)
	k.state.Store(int32(iamflowv1.State_STATE_STARTING))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := start(ctx)
	if err != nil {
		return k.fail(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(w.Consumers))
	for i, c := range w.Consumers {
		wg.Go(func() {
			if err := c.Run(ctx); err != nil {
				errs[i] = err
				cancel() // one consumer down stops the service: let the process restart it whole
			}
		})
	}
	for _, loop := range w.Loops {
		wg.Go(func() { loop(ctx) })
	}
	k.state.Store(int32(iamflowv1.State_STATE_RUNNING))
	<-ctx.Done()
	k.state.Store(int32(iamflowv1.State_STATE_STOPPING))
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return k.fail(err)
	}
	return nil
}

func (k *Kit) fail(err error) error {
	k.Error(err)
	return fmt.Errorf("%s: %w", k.name, err)
}
