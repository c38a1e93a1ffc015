package bus

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ConsumerConfig configures a durable consumer and its runner. Zero fields
// take the documented defaults; negative ones are invalid.
type ConsumerConfig struct {
	// Stream to consume (default IAM_EVENTS).
	Stream string `yaml:"stream"`
	// Durable is the consumer's name, shared by every replica of a service;
	// its dead letters go to iam.dlq.<durable>. Required: letters, digits, '-', '_'.
	Durable string `yaml:"durable"`
	// FilterSubjects restricts the consumer to these subjects (default: all of the stream's).
	FilterSubjects []string `yaml:"filter_subjects"`
	// AckWait is how long the server waits for an ack before redelivering
	// (default 30s, at least 1s). Running handlers send progress every AckWait/2.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxDeliver is how many deliveries a message gets before it is dead-lettered (default 10).
	MaxDeliver int `yaml:"max_deliver"`
	// Backoff is the delay before redelivery after a Retry, by delivery count:
	// Backoff[n-1] after the nth delivery, the last entry from then on
	// (default 1s, 5s, 30s, 2m, 10m).
	Backoff []time.Duration `yaml:"backoff"`
	// MaxAckPending bounds the messages delivered and not yet acked, across
	// all replicas (default 1000).
	MaxAckPending int `yaml:"max_ack_pending"`
	// Batch is the most messages one process holds at once (default 100).
	Batch int `yaml:"batch"`
	// Concurrency is how many handlers run at once in one process (default 4).
	Concurrency int `yaml:"concurrency"`
	// DrainTimeout bounds how long a stopping consumer waits for running
	// handlers before cancelling their context (default 30s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`

	// Coalesce returns the entity a message is about, or "" for none. Messages
	// held at once with the same key are handled once, with the newest of them
	// (highest stream sequence), and settled together by its result; messages
	// with one key are never handled concurrently. Nil handles every message.
	Coalesce func(*Msg) string `yaml:"-"`
}

// Consumer defaults.
const (
	DefaultAckWait       = 30 * time.Second
	DefaultMaxDeliver    = 10
	DefaultMaxAckPending = 1000
	DefaultBatch         = 100
	DefaultConcurrency   = 4
	DefaultDrainTimeout  = 30 * time.Second
)

// DefaultBackoff is the default ConsumerConfig.Backoff.
func DefaultBackoff() []time.Duration {
	return []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}
}

// WithDefaults returns c with zero fields set to their defaults.
func (c ConsumerConfig) WithDefaults() ConsumerConfig {
	if c.Stream == "" {
		c.Stream = StreamEvents
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff()
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	return c
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate reports every problem in c (after defaults); each message names
// the yaml key and how to fix it.
func (c ConsumerConfig) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !nameRE.MatchString(c.Stream) {
		bad("stream: %q is not a stream name; use letters, digits, '-' and '_' (default %s)", c.Stream, StreamEvents)
	}
	switch {
	case c.Durable == "":
		bad("durable: empty; name the consumer (letters, digits, '-', '_'), e.g. replicator-prod")
	case !nameRE.MatchString(c.Durable):
		bad("durable: %q is not a consumer name; use 1 to 64 letters, digits, '-' and '_'", c.Durable)
	}
	for i, s := range c.FilterSubjects {
		if err := validateFilter(s); err != nil {
			bad("filter_subjects[%d]: %v", i, err)
		}
	}
	if c.AckWait < time.Second {
		bad("ack_wait: %v; set at least 1s (default %v)", c.AckWait, DefaultAckWait)
	}
	if c.MaxDeliver < 1 {
		bad("max_deliver: %d; set at least 1 (default %d)", c.MaxDeliver, DefaultMaxDeliver)
	}
	for i, d := range c.Backoff {
		if d <= 0 {
			bad("backoff[%d]: %v; set a positive duration", i, d)
		}
	}
	if c.MaxAckPending < 1 {
		bad("max_ack_pending: %d; set at least 1 (default %d)", c.MaxAckPending, DefaultMaxAckPending)
	}
	if c.Batch < 1 {
		bad("batch: %d; set at least 1 (default %d)", c.Batch, DefaultBatch)
	}
	if c.Concurrency < 1 {
		bad("concurrency: %d; set at least 1 (default %d)", c.Concurrency, DefaultConcurrency)
	}
	if c.DrainTimeout < 0 {
		bad("drain_timeout: %v; set a positive duration (default %v)", c.DrainTimeout, DefaultDrainTimeout)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid consumer config: %w", err)
	}
	return nil
}

func validateFilter(s string) error {
	if s == "" {
		return errors.New("empty; remove it or write a subject such as iam.event.*.user.*")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("%q holds white space", s)
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return fmt.Errorf("%q has an empty token", s)
		case t == ">" && i != len(toks)-1:
			return fmt.Errorf("%q: '>' must be the last token", s)
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("%q: wildcards must be whole tokens", s)
		}
	}
	return nil
}

// backoff is the delay after the nth delivery of a message.
func (c ConsumerConfig) backoff(delivered uint64) time.Duration {
	i := int(min(delivered, uint64(len(c.Backoff)))) - 1
	return c.Backoff[max(i, 0)]
}
