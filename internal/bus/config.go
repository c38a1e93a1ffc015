package bus

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// MinDuplicateWindow is the shortest accepted streams.duplicate_window: OCI
// Notifications retries a delivery for up to 2 hours, and a retry that
// arrives after the window would be stored twice.
const MinDuplicateWindow = 2 * time.Hour

// Storage names accepted by streams.storage.
const (
	StorageFile   = "file"
	StorageMemory = "memory"
)

// Config is the bus section of the iamflow configuration. Start from
// [DefaultConfig]: zero values are not replaced by defaults, they are invalid.
type Config struct {
	// URLs of the NATS servers. Empty starts an embedded server (monolithic mode).
	URLs []string `yaml:"urls"`
	// CredsFile is a NATS credentials file (JWT and NKey seed).
	CredsFile string `yaml:"creds_file"`
	// TLS configures TLS towards URLs.
	TLS TLSConfig `yaml:"tls"`
	// Name is the NATS connection name, shown by the server's monitoring.
	Name string `yaml:"name"`
	// Embedded configures the embedded server, used when URLs is empty.
	Embedded EmbeddedConfig `yaml:"embedded"`
	// Streams configures the streams Open creates or updates.
	Streams StreamsConfig `yaml:"streams"`
	// FailoverAfter is how long JetStream requests may keep failing on the
	// server the bus is connected to, while the connection itself is up,
	// before the bus moves to another server of the cluster that answers
	// (a server cut off from the others keeps its clients' TCP connections
	// and serves them nothing). Used with urls only.
	FailoverAfter time.Duration `yaml:"failover_after"`
}

// Bounds and default of Config.FailoverAfter.
const (
	DefaultFailoverAfter = 3 * time.Second
	MinFailoverAfter     = time.Second
	MaxFailoverAfter     = 10 * time.Minute
)

// TLSConfig names the files for a TLS connection to NATS.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the servers' certificates.
	CAFile string `yaml:"ca_file"`
	// CertFile is the PEM client certificate, for mutual TLS.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM key of CertFile.
	KeyFile string `yaml:"key_file"`
}

// EmbeddedConfig configures the NATS server started in-process when no URLs are given.
type EmbeddedConfig struct {
	// StoreDir is where JetStream keeps its files.
	StoreDir string `yaml:"store_dir"`
	// Host is the listen address; the default 127.0.0.1 keeps the server local.
	Host string `yaml:"host"`
	// Port is the client port; -1 picks a random free port.
	Port int `yaml:"port"`
}

// StreamsConfig sets the limits of IAM_EVENTS, IAM_DLQ and IAM_AUDIT.
type StreamsConfig struct {
	// Replicas is the number of copies of each stream (1 for a single server, 3 for a cluster).
	Replicas int `yaml:"replicas"`
	// EventsMaxAge is how long IAM_EVENTS keeps an event.
	EventsMaxAge time.Duration `yaml:"events_max_age"`
	// DuplicateWindow is how long a Nats-Msg-Id is remembered for deduplication.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// DLQMaxAge is how long IAM_DLQ keeps a dead letter.
	DLQMaxAge time.Duration `yaml:"dlq_max_age"`
	// AuditMaxAge is how long IAM_AUDIT keeps an audit record.
	AuditMaxAge time.Duration `yaml:"audit_max_age"`
	// Storage is "file" or "memory".
	Storage string `yaml:"storage"`
}

// DefaultConfig is the configuration iamflow starts from: an embedded server
// on 127.0.0.1:4222 storing in ./data/nats, file storage, one replica.
func DefaultConfig() Config {
	return Config{
		Name: "iamflow",
		Embedded: EmbeddedConfig{
			StoreDir: "./data/nats",
			Host:     "127.0.0.1",
			Port:     4222,
		},
		Streams: StreamsConfig{
			Replicas:        1,
			EventsMaxAge:    168 * time.Hour,
			DuplicateWindow: 2*time.Hour + 15*time.Minute,
			DLQMaxAge:       720 * time.Hour,
			AuditMaxAge:     2160 * time.Hour,
			Storage:         StorageFile,
		},
		FailoverAfter: DefaultFailoverAfter,
	}
}

// embedded reports whether c starts an embedded server rather than connecting to URLs.
func (c Config) embedded() bool { return len(c.URLs) == 0 }

// Validate reports every problem in c; each message names the yaml key
// (relative to the bus section) and how to fix it.
func (c Config) Validate() error {
	var errs []error
	for i, u := range c.URLs {
		if err := validateURL(u); err != nil {
			errs = append(errs, fmt.Errorf("urls[%d]: %v", i, err))
		}
	}
	if c.embedded() {
		errs = append(errs, c.embeddedProblems()...)
	}
	if c.FailoverAfter < MinFailoverAfter || c.FailoverAfter > MaxFailoverAfter {
		errs = append(errs, fmt.Errorf("failover_after: %v; set %v to %v (default %v): how long JetStream may keep failing on the connected server before moving to another",
			c.FailoverAfter, MinFailoverAfter, MaxFailoverAfter, DefaultFailoverAfter))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls.cert_file and tls.key_file: set both for a client certificate, or neither"))
	}
	errs = append(errs, c.Streams.problems()...)
	return errors.Join(errs...)
}

// embeddedProblems lists what is wrong with c when it starts an embedded
// server: settings that only apply to urls, and the embedded section.
func (c Config) embeddedProblems() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.CredsFile != "" {
		bad("creds_file: credentials are for connecting to urls, and urls is empty (embedded server); remove creds_file or set urls")
	}
	if c.TLS != (TLSConfig{}) {
		bad("tls: TLS is for connecting to urls, and urls is empty (embedded server); remove tls or set urls")
	}
	if c.Embedded.StoreDir == "" {
		bad("embedded.store_dir: empty; set a directory for JetStream files (default ./data/nats)")
	}
	if c.Embedded.Host == "" {
		bad("embedded.host: empty; set a listen address (default 127.0.0.1)")
	}
	if p := c.Embedded.Port; p != -1 && (p < 1 || p > 65535) {
		bad("embedded.port: %d is not a port; use 1-65535 (default 4222) or -1 for a random port", p)
	}
	if c.Streams.Replicas > 1 {
		bad("streams.replicas: %d, but the embedded server is a single node; set 1 or set urls to a cluster", c.Streams.Replicas)
	}
	return errs
}

// problems lists what is wrong with the streams section, each message
// naming its key under streams.
func (s StreamsConfig) problems() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Replicas < 1 || s.Replicas > 5 {
		bad("streams.replicas: %d; set 1 to 5 (default 1)", s.Replicas)
	}
	if s.EventsMaxAge <= 0 {
		bad("streams.events_max_age: %v; set a positive duration (default 168h)", s.EventsMaxAge)
	}
	if s.DLQMaxAge <= 0 {
		bad("streams.dlq_max_age: %v; set a positive duration (default 720h)", s.DLQMaxAge)
	}
	if s.AuditMaxAge <= 0 {
		bad("streams.audit_max_age: %v; set a positive duration (default 2160h)", s.AuditMaxAge)
	}
	switch {
	case s.DuplicateWindow < MinDuplicateWindow:
		bad("streams.duplicate_window: %v is shorter than the 2h OCI Notifications retries a delivery, so a late retry would be stored twice; set at least 2h (default 2h15m)", s.DuplicateWindow)
	case s.EventsMaxAge > 0 && s.DuplicateWindow > s.EventsMaxAge:
		bad("streams.duplicate_window: %v is longer than streams.events_max_age %v; shorten it or keep events longer", s.DuplicateWindow, s.EventsMaxAge)
	}
	if s.Storage != StorageFile && s.Storage != StorageMemory {
		bad("streams.storage: %q; set %q (default) or %q", s.Storage, StorageFile, StorageMemory)
	}
	return errs
}

func validateURL(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty; set a server URL such as nats://nats:4222")
	}
	if strings.ContainsAny(s, " ,\t\n") {
		return fmt.Errorf("%q holds spaces or commas; give one URL per list item", s)
	}
	if !strings.Contains(s, "://") {
		return fmt.Errorf("%q has no scheme; write nats://%s", s, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%q: scheme %q; use nats://, tls://, ws:// or wss://", s, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}
