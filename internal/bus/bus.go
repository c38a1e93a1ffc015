package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the tracer of this package.
const instrumentationName = "github.com/iamflow/iamflow/internal/bus"

// closeTimeout bounds how long Close waits for the connection to drain.
const closeTimeout = 30 * time.Second

// Bus is a NATS connection with JetStream and iamflow's streams, optionally
// with the embedded server it runs on. It is safe for concurrent use.
type Bus struct {
	cfg        Config
	log        *slog.Logger
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	metrics    *metrics
	gauges     *consumerGauges

	srv       *server.Server // nil when connected to URLs
	nc        *nats.Conn
	js        jetstream.JetStream
	clientURL string
	closed    <-chan nats.Status // receives when the connection is closed
	failover  *failover          // nil for the embedded server (it has no other)

	closeOnce sync.Once
	closeErr  error
}

// Open validates cfg, starts the embedded server if cfg has no URLs, connects,
// and creates or updates IAM_EVENTS, IAM_DLQ and IAM_AUDIT. Close the Bus when done.
func Open(ctx context.Context, cfg Config, opts ...Option) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid bus config: %w", err)
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	m, err := newMetrics(o.registerer)
	if err != nil {
		return nil, fmt.Errorf("register bus metrics: %w", err)
	}
	b := &Bus{
		cfg:        cfg,
		log:        o.logger,
		tracer:     o.tracer.Tracer(instrumentationName),
		propagator: o.propagator,
		metrics:    m,
	}
	b.gauges = &consumerGauges{b: b, consumers: map[[2]string]*Consumer{}}

	if cfg.embedded() {
		if b.srv, err = startEmbedded(ctx, cfg, b.log); err != nil {
			return nil, err
		}
		b.clientURL = b.srv.ClientURL()
	} else {
		b.clientURL = strings.Join(cfg.URLs, ",")
	}

	if b.nc, err = connect(b.clientURL, cfg, o); err != nil {
		b.shutdownServer()
		return nil, err
	}
	b.closed = b.nc.StatusChanged(nats.CLOSED)
	if b.js, err = jetstream.New(b.nc); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if !cfg.embedded() {
		b.failover = startFailover(b, cfg, o)
	}
	if err := ensureStreams(ctx, b.js, cfg.Streams); err != nil {
		_ = b.Close()
		return nil, err
	}
	if err := b.gauges.register(o.registerer); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("register bus gauges: %w", err)
	}
	return b, nil
}

// Close drains the connection (pending publishes and acks are flushed), then
// shuts down the embedded server, if any, and waits for it to stop. Close
// is idempotent. Stop consumers (cancel Run's context) before closing.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		if b.failover != nil {
			b.failover.stop()
		}
		switch err := b.nc.Drain(); {
		case err == nil, errors.Is(err, nats.ErrConnectionClosed):
		case errors.Is(err, nats.ErrConnectionReconnecting):
			// Nothing can be flushed to a server we cannot reach.
			b.nc.Close()
		default:
			b.closeErr = fmt.Errorf("drain nats connection: %w", err)
			b.nc.Close()
		}
		select {
		case <-b.closed:
		case <-b.alreadyClosed():
		case <-time.After(closeTimeout):
			b.nc.Close()
			b.closeErr = errors.Join(b.closeErr, fmt.Errorf("drain nats connection: not closed after %v", closeTimeout))
		}
		b.shutdownServer()
	})
	return b.closeErr
}

// alreadyClosed is ready if the connection was closed before Close.
func (b *Bus) alreadyClosed() <-chan struct{} {
	ch := make(chan struct{})
	if b.nc.IsClosed() {
		close(ch)
	}
	return ch
}

func (b *Bus) shutdownServer() {
	if b.srv == nil {
		return
	}
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
	b.log.Info("embedded nats server stopped")
}

// Conn is the underlying NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the JetStream API on Conn.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// ClientURL is where other clients reach the same NATS: the embedded server's
// URL, or the configured URLs joined by commas (as nats.Connect accepts them).
func (b *Bus) ClientURL() string { return b.clientURL }

// Ready reports whether the connection is up and JetStream answers; it is
// meant for a readiness probe.
func (b *Bus) Ready(ctx context.Context) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats connection is %s", strings.ToLower(st.String()))
	}
	_, err := b.js.AccountInfo(ctx)
	b.failover.note(reqReady, "", err)
	if err != nil {
		return fmt.Errorf("jetstream account info: %w", err)
	}
	return nil
}
