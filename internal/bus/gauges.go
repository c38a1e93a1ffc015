package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/telemetry"
)

// gaugeTimeout bounds the JetStream reads one scrape makes.
const gaugeTimeout = 3 * time.Second

// Gauges read from JetStream when /metrics is scraped (consumerGauges):
//
//	iamflow_bus_consumer_pending_messages{stream,consumer}      stored and not yet delivered to the consumer
//	iamflow_bus_consumer_ack_pending_messages{stream,consumer}  delivered and not yet acknowledged
//	iamflow_bus_consumer_lag_seconds{stream,consumer}           age of the oldest message the consumer has not acknowledged (0: caught up)
//	iamflow_bus_dead_letters{consumer}                          dead letters in IAM_DLQ
//
// The consumers are those this process runs (replicas of a service report
// the same consumer: aggregate with max by (consumer)); dead letters are
// reported for every consumer that has some, and as 0 for this process's
// consumers that have none, so a rule can watch them grow from zero.
var (
	descPending = prometheus.NewDesc("iamflow_bus_consumer_pending_messages",
		"Messages stored in the consumer's stream and not yet delivered to it (read from JetStream at scrape time).",
		[]string{"stream", "consumer"}, nil)
	descAckPending = prometheus.NewDesc("iamflow_bus_consumer_ack_pending_messages",
		"Messages delivered to the consumer and not yet acknowledged (read from JetStream at scrape time).",
		[]string{"stream", "consumer"}, nil)
	descLag = prometheus.NewDesc("iamflow_bus_consumer_lag_seconds",
		"Age of the oldest message the consumer has not acknowledged, 0 when it is caught up (read from JetStream at scrape time).",
		[]string{"stream", "consumer"}, nil)
	descDeadLetters = prometheus.NewDesc("iamflow_bus_dead_letters",
		"Dead letters waiting in IAM_DLQ, by consumer: each is something a person must look at (read from JetStream at scrape time).",
		[]string{"consumer"}, nil)
)

// consumerGauges is the collector of the gauges above.
type consumerGauges struct {
	b *Bus

	mu        sync.Mutex
	consumers map[[2]string]*Consumer // by stream and durable
}

// track adds c to the consumers reported.
func (g *consumerGauges) track(c *Consumer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.consumers[[2]string{c.cfg.Stream, c.cfg.Durable}] = c
}

// register puts the collector on reg. Several buses may share a registry
// (tests): the first one's collector reports.
func (g *consumerGauges) register(reg prometheus.Registerer) error {
	_, err := telemetry.Register(reg, g)
	return err
}

// Describe implements prometheus.Collector.
func (g *consumerGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descAckPending
	ch <- descLag
	ch <- descDeadLetters
}

// Collect implements prometheus.Collector. What cannot be read is left
// out (an absent series, not a zero) and logged at debug level.
func (g *consumerGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), gaugeTimeout)
	defer cancel()
	g.mu.Lock()
	consumers := make([]*Consumer, 0, len(g.consumers))
	for _, c := range g.consumers {
		consumers = append(consumers, c)
	}
	g.mu.Unlock()

	now := time.Now()
	for _, c := range consumers {
		stream, name := c.cfg.Stream, c.cfg.Durable
		info, err := c.consumer().Info(ctx)
		if err != nil {
			g.b.log.Debug("metrics: consumer info", "consumer", name, "error", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(info.NumPending), stream, name)
		ch <- prometheus.MustNewConstMetric(descAckPending, prometheus.GaugeValue, float64(info.NumAckPending), stream, name)
		lag, err := g.lag(ctx, c, info, now)
		if err != nil {
			g.b.log.Debug("metrics: consumer lag", "consumer", name, "error", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, lag.Seconds(), stream, name)
	}

	counts, err := g.b.DeadLetterCounts(ctx)
	if err != nil {
		g.b.log.Debug("metrics: dead letter counts", "error", err)
		return
	}
	for _, c := range consumers {
		if _, ok := counts[c.cfg.Durable]; !ok {
			counts[c.cfg.Durable] = 0
		}
	}
	for name, n := range counts {
		ch <- prometheus.MustNewConstMetric(descDeadLetters, prometheus.GaugeValue, float64(n), name)
	}
}

// lag is the age of the oldest message c has not acknowledged: the first
// message of its subjects after its ack floor (every message up to the
// floor is acknowledged, so the next one is not). Zero when nothing is
// pending or waiting for an ack.
func (g *consumerGauges) lag(ctx context.Context, c *Consumer, info *jetstream.ConsumerInfo, now time.Time) (time.Duration, error) {
	if info.NumPending == 0 && info.NumAckPending == 0 {
		return 0, nil
	}
	stream, err := g.b.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return 0, err
	}
	filters := c.cfg.FilterSubjects
	if len(filters) == 0 {
		filters = []string{">"}
	}
	var oldest time.Time
	for _, f := range filters {
		m, err := stream.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(f))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if oldest.IsZero() || m.Time.Before(oldest) {
			oldest = m.Time
		}
	}
	if oldest.IsZero() {
		return 0, nil
	}
	return max(now.Sub(oldest), 0), nil
}
