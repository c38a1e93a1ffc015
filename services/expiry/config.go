package expiry

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/validate"
	"github.com/iamflow/iamflow/services/expiry/access"
)

// Config is the expiry section of iamflow's configuration: the temporary
// groups and their limits, the safety scan and the event consumer.
type Config struct {
	// Groups are the temporary groups: a membership in one of them is a grant
	// that ends at a deadline.
	Groups []TemporaryGroup `yaml:"groups"`
	// ReconcileOnStart gives every member of a temporary group that holds no
	// grant one with the group's default duration when Run starts (default
	// true): a membership added while iamflow was down, or whose event was
	// lost, would otherwise never end.
	ReconcileOnStart bool `yaml:"reconcile_on_start"`
	// ReconcileAfterOutage does the same when the connection to NATS comes
	// back after being down at least this long (events sent meanwhile may
	// be lost for good: OCI Notifications stops retrying after 2 hours).
	// 0 takes the default (5m); a negative value turns it off.
	ReconcileAfterOutage time.Duration `yaml:"reconcile_after_outage"`
	// ScanInterval is how often every grant is checked for a deadline that
	// passed without a revocation (a lost timer, a failed revocation).
	// Default 30s.
	ScanInterval time.Duration `yaml:"scan_interval"`
	// Consumer tunes the durable JetStream consumer of membership events.
	// Durable defaults to "expiry"; filter_subjects is derived from groups
	// and must be left empty.
	Consumer bus.ConsumerConfig `yaml:"consumer"`
	// Access is the request workflow of the temporary groups: who may ask
	// for which group for how long, and who decides (docs/access-policy.md).
	// Without policies grants are made by operators only.
	Access access.Config `yaml:"access"`
}

// TemporaryGroup is a group whose memberships expire.
type TemporaryGroup struct {
	// Domain is the short name of the group's domain.
	Domain string `yaml:"domain"`
	// Group is the group's displayName (compared case-insensitively).
	Group string `yaml:"group"`
	// MaxDuration is the longest a grant may last, from its start or from an
	// extension.
	MaxDuration time.Duration `yaml:"max_duration"`
	// DefaultDuration is the duration of a grant asked for without one, and
	// of a membership added outside iamflow.
	DefaultDuration time.Duration `yaml:"default_duration"`
}

// Defaults of Config.ScanInterval and Config.ReconcileAfterOutage.
const (
	defaultScanInterval         = 30 * time.Second
	defaultReconcileAfterOutage = 5 * time.Minute
)

// DefaultConfig returns a configuration with no temporary group, the
// default scan interval and consumer, and the reconcile on start and after
// an outage of NATS on.
func DefaultConfig() Config {
	return Config{ScanInterval: defaultScanInterval, Consumer: bus.ConsumerConfig{Durable: Name},
		ReconcileOnStart: true, ReconcileAfterOutage: defaultReconcileAfterOutage}
}

func (c Config) withDefaults() Config {
	if c.ScanInterval == 0 {
		c.ScanInterval = defaultScanInterval
	}
	if c.ReconcileAfterOutage == 0 {
		c.ReconcileAfterOutage = defaultReconcileAfterOutage
	}
	if c.Consumer.Durable == "" {
		c.Consumer.Durable = Name
	}
	return c
}

// Validate checks the configuration, naming each bad key.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ScanInterval < 0 {
		bad("scan_interval: %v is negative", c.ScanInterval)
	}
	seen := map[string]int{}
	for i, g := range c.Groups {
		p := fmt.Sprintf("groups[%d] %q: ", i, g.Group)
		if !event.ValidDomainName(g.Domain) {
			bad("%sdomain: %q is not a domain short name", p, g.Domain)
		}
		if strings.TrimSpace(g.Group) == "" {
			bad("groups[%d]: group: empty; give the group's displayName", i)
		}
		k := g.key()
		if j, dup := seen[k]; dup {
			bad("%sduplicates groups[%d]", p, j)
		}
		seen[k] = i
		switch {
		case g.MaxDuration <= 0:
			bad("%smax_duration: %v; give a positive duration such as 8h", p, g.MaxDuration)
		case g.DefaultDuration <= 0:
			bad("%sdefault_duration: %v; give a positive duration such as 2h", p, g.DefaultDuration)
		case g.DefaultDuration > g.MaxDuration:
			bad("%sdefault_duration: %v exceeds max_duration %v", p, g.DefaultDuration, g.MaxDuration)
		}
	}
	if len(c.Consumer.FilterSubjects) > 0 {
		bad("consumer.filter_subjects: derived from groups; leave it empty")
	}
	cc := c.Consumer.WithDefaults()
	if err := cc.Validate(); err != nil {
		errs = append(errs, validate.Prefix("consumer.", err))
	}
	ac := c.Access
	errs = append(errs, ac.Validate(c.Temporary))
	return errors.Join(errs...)
}

// Temporary returns the max_duration of a temporary group, and whether
// domain/group is one.
func (c Config) Temporary(domain, group string) (time.Duration, bool) {
	for _, g := range c.Groups {
		if g.key() == groupKey(domain, group) {
			return g.MaxDuration, true
		}
	}
	return 0, false
}

func (g TemporaryGroup) key() string { return groupKey(g.Domain, g.Group) }

func groupKey(domain, group string) string {
	return domain + "\x00" + strings.ToLower(strings.TrimSpace(group))
}
