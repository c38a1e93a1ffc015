package replicator

import (
	"errors"
	"fmt"
	"time"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/validate"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// Config is the replicator section of iamflow's configuration: the
// replication links, the consumer and the full reconcile schedule.
type Config struct {
	// Links are the replication links; each copies one source domain to one
	// or more target domains.
	Links []Link `yaml:"links"`
	// Consumer tunes the durable JetStream consumers. Durable is a prefix:
	// the service runs one consumer per target, "<durable>-<target>".
	// filter_subjects is derived from the links and must be left empty.
	Consumer bus.ConsumerConfig `yaml:"consumer"`
	// FullReconcile schedules the periodic full reconcile that repairs what
	// events missed.
	FullReconcile FullReconcile `yaml:"full_reconcile"`
}

// Link is one replication link of the section: what it copies, from where
// to where, and its delete policy and guard. Its rules are the planner's.
type Link = planner.Link

// FullReconcile schedules full reconciles of every link.
type FullReconcile struct {
	// Interval between full reconciles; 0 takes the default (1h). At least 5m.
	Interval time.Duration `yaml:"interval"`
	// OnStart reconciles every link fully when the service starts (default
	// true), unless a full reconcile began less than after_outage (at
	// least 10s) before — here or in another replica: the process cannot
	// have been away longer, and the events meanwhile wait in JetStream —
	// or the link has never been reconciled (a first start waits one
	// interval).
	OnStart bool `yaml:"on_start"`
	// AfterOutage reconciles every link fully when the connection to NATS
	// comes back after being down at least this long: events sent meanwhile
	// may be lost for good (OCI Notifications stops retrying after 2 hours).
	// 0 takes the default (5m); a negative value turns it off.
	AfterOutage time.Duration `yaml:"after_outage"`
}

// Defaults.
const (
	// defaultDurable is the consumers' durable name prefix.
	defaultDurable = "replicator"
	// defaultFullReconcileInterval is FullReconcile.Interval's default.
	defaultFullReconcileInterval = time.Hour
	// minFullReconcileInterval is the shortest full reconcile interval.
	minFullReconcileInterval = 5 * time.Minute
	// defaultAfterOutage is FullReconcile.AfterOutage's default.
	defaultAfterOutage = 5 * time.Minute
)

// DefaultConfig returns the defaults: no links, the "replicator" consumer
// prefix and an hourly full reconcile, one on start and one after an
// outage of NATS of 5 minutes or more.
func DefaultConfig() Config {
	return Config{
		Consumer:      bus.ConsumerConfig{Durable: defaultDurable},
		FullReconcile: FullReconcile{Interval: defaultFullReconcileInterval, OnStart: true, AfterOutage: defaultAfterOutage},
	}
}

// withDefaults fills the zero fields a YAML section may leave out.
func (c Config) withDefaults() Config {
	if c.Consumer.Durable == "" {
		c.Consumer.Durable = defaultDurable
	}
	if c.FullReconcile.Interval == 0 {
		c.FullReconcile.Interval = defaultFullReconcileInterval
	}
	if c.FullReconcile.AfterOutage == 0 {
		c.FullReconcile.AfterOutage = defaultAfterOutage
	}
	links := make([]Link, len(c.Links))
	for i, l := range c.Links {
		links[i] = l.WithDefaults()
	}
	c.Links = links
	return c
}

// Validate reports every problem in the section, one per line, each naming
// its key relative to the section, e.g.
// `links[0] "hub-to-spoke": groups.include[1]: "(" is not a valid pattern: missing closing )`.
// Zero values take their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	names := map[string]int{}
	pairs := map[[2]string]int{} // source, target -> link index
	for i, l := range c.Links {
		key := fmt.Sprintf("links[%d]", i)
		if l.Name != "" {
			key = fmt.Sprintf("links[%d] %q", i, l.Name)
		}
		if j, dup := names[l.Name]; dup && l.Name != "" {
			bad("%s: name: also the name of links[%d]; link names must be unique", key, j)
		} else {
			names[l.Name] = i
		}
		for _, err := range l.Validate() {
			bad("%s: %v", key, err)
		}
		for _, t := range l.Targets {
			dirs := [][2]string{{l.Source, t}}
			if l.Bidirectional {
				dirs = append(dirs, [2]string{t, l.Source})
			}
			for _, d := range dirs {
				if j, dup := pairs[d]; dup && j != i {
					bad("%s: %s -> %s is also replicated by links[%d]; one link per direction", key, d[0], d[1], j)
				}
				pairs[d] = i
			}
		}
	}
	if c.FullReconcile.Interval < minFullReconcileInterval {
		bad("full_reconcile.interval: %v; set at least %v (default %v)", c.FullReconcile.Interval, minFullReconcileInterval, defaultFullReconcileInterval)
	}
	if len(c.Consumer.FilterSubjects) > 0 {
		bad("consumer.filter_subjects: derived from the links; leave it empty")
	}
	cc := c.Consumer.WithDefaults()
	if err := cc.Validate(); err != nil {
		errs = append(errs, validate.Prefix("consumer.", err))
	}
	return errors.Join(errs...)
}

// CheckDomains reports links naming a domain that is not among domains, the
// configured domains' short names; call it after Validate.
func (c Config) CheckDomains(domains []string) error {
	known := map[string]bool{}
	for _, d := range domains {
		known[d] = true
	}
	var errs []error
	for i, l := range c.Links {
		key := fmt.Sprintf("links[%d] %q", i, l.Name)
		if l.Source != "" && !known[l.Source] {
			errs = append(errs, fmt.Errorf("%s: source: %q is not a configured domain", key, l.Source))
		}
		for j, t := range l.Targets {
			if t != "" && !known[t] {
				errs = append(errs, fmt.Errorf("%s: targets[%d]: %q is not a configured domain", key, j, t))
			}
		}
	}
	return errors.Join(errs...)
}
