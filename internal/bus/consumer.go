package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Consumer is a durable pull consumer and the runner that feeds its
// messages to a Handler. Create it with [Bus.Consumer], start it with [Consumer.Run].
type Consumer struct {
	b   *Bus
	cfg ConsumerConfig
	h   Handler
	log *slog.Logger

	mu   sync.Mutex
	cons jetstream.Consumer // replaced if the server lost the consumer

	running      atomic.Bool
	deadLettered atomic.Uint64

	handled  map[string]prometheus.Counter // by result
	duration prometheus.Observer
}

// ConsumerStats is a consumer's state on the server, plus what this process dead-lettered.
type ConsumerStats struct {
	// Stream the consumer reads.
	Stream string
	// Name is the durable name.
	Name string
	// Delivered counts deliveries, redeliveries included (the last consumer sequence).
	Delivered uint64
	// AckPending counts messages delivered and not yet acked.
	AckPending int
	// Pending counts messages in the stream not yet delivered.
	Pending uint64
	// Redelivered counts messages delivered more than once and not yet acked.
	Redelivered int
	// DeadLettered counts messages this process stored in IAM_DLQ.
	DeadLettered uint64
}

// Consumer creates the durable pull consumer cfg describes, or updates it
// to cfg, and returns its runner; zero fields of cfg take their defaults.
// The server never drops a message on its own (MaxDeliver -1): the runner
// counts deliveries and dead-letters. h is always wrapped in [Recover].
func (b *Bus) Consumer(ctx context.Context, cfg ConsumerConfig, h Handler) (*Consumer, error) {
	if h == nil {
		return nil, errors.New("consumer: nil handler")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Consumer{
		b:        b,
		cfg:      cfg,
		h:        Recover(h),
		log:      b.log.With("consumer", cfg.Durable, "stream", cfg.Stream),
		handled:  make(map[string]prometheus.Counter),
		duration: b.metrics.duration.WithLabelValues(cfg.Durable),
	}
	for _, r := range []string{resultDone, resultRetry, resultTerminal, resultDeadLettered} {
		c.handled[r] = b.metrics.handled.WithLabelValues(cfg.Durable, r)
	}
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	b.gauges.track(c)
	return c, nil
}

// jetstreamConfig is the server-side configuration of the consumer.
func (c ConsumerConfig) jetstreamConfig() jetstream.ConsumerConfig {
	jc := jetstream.ConsumerConfig{
		Durable:       c.Durable,
		Description:   "iamflow consumer " + c.Durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1, // the runner dead-letters; the server must never drop silently
		MaxAckPending: c.MaxAckPending,
	}
	switch len(c.FilterSubjects) {
	case 0:
	case 1:
		jc.FilterSubject = c.FilterSubjects[0]
	default:
		jc.FilterSubjects = c.FilterSubjects
	}
	return jc
}

// ensure creates or updates the consumer on the server.
func (c *Consumer) ensure(ctx context.Context) error {
	cons, err := c.b.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, c.cfg.jetstreamConfig())
	if err != nil {
		return fmt.Errorf("create or update consumer %s on stream %s: %w", c.cfg.Durable, c.cfg.Stream, err)
	}
	c.mu.Lock()
	c.cons = cons
	c.mu.Unlock()
	return nil
}

func (c *Consumer) consumer() jetstream.Consumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cons
}

// Config is the consumer's configuration, defaults applied.
func (c *Consumer) Config() ConsumerConfig { return c.cfg }

// Stats reads the consumer's state from the server.
func (c *Consumer) Stats(ctx context.Context) (ConsumerStats, error) {
	info, err := c.consumer().Info(ctx)
	if err != nil {
		return ConsumerStats{}, fmt.Errorf("consumer %s info: %w", c.cfg.Durable, err)
	}
	return ConsumerStats{
		Stream:       info.Stream,
		Name:         info.Name,
		Delivered:    info.Delivered.Consumer,
		AckPending:   info.NumAckPending,
		Pending:      info.NumPending,
		Redelivered:  info.NumRedelivered,
		DeadLettered: c.deadLettered.Load(),
	}, nil
}
