package bus_test

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/iamflow/iamflow/internal/bus"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := bus.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	remote := func(c *bus.Config) { c.URLs = []string{"nats://nats:4222"} }
	tests := []struct {
		name   string
		change func(*bus.Config)
		want   []string // substrings of the error; nil means valid
	}{
		{"defaults", func(*bus.Config) {}, nil},
		{"remote with tls and creds", func(c *bus.Config) {
			remote(c)
			c.CredsFile = "/etc/nats/iamflow.creds"
			c.TLS = bus.TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}
			c.Streams.Replicas = 3
		}, nil},
		{"random port", func(c *bus.Config) { c.Embedded.Port = -1 }, nil},
		{"memory storage", func(c *bus.Config) { c.Streams.Storage = bus.StorageMemory }, nil},
		{"duplicate window exactly 2h", func(c *bus.Config) { c.Streams.DuplicateWindow = 2 * time.Hour }, nil},

		{"duplicate window below OCI retries", func(c *bus.Config) { c.Streams.DuplicateWindow = time.Hour },
			[]string{"streams.duplicate_window", "2h", "OCI"}},
		{"duplicate window above events max age", func(c *bus.Config) {
			c.Streams.EventsMaxAge = 3 * time.Hour
			c.Streams.DuplicateWindow = 4 * time.Hour
		}, []string{"streams.duplicate_window", "streams.events_max_age"}},
		{"events max age zero", func(c *bus.Config) { c.Streams.EventsMaxAge = 0 }, []string{"streams.events_max_age"}},
		{"dlq max age negative", func(c *bus.Config) { c.Streams.DLQMaxAge = -time.Hour }, []string{"streams.dlq_max_age"}},
		{"audit max age zero", func(c *bus.Config) { c.Streams.AuditMaxAge = 0 }, []string{"streams.audit_max_age"}},
		{"storage unknown", func(c *bus.Config) { c.Streams.Storage = "disk" }, []string{"streams.storage", `"disk"`, `"file"`}},
		{"replicas zero", func(c *bus.Config) { remote(c); c.Streams.Replicas = 0 }, []string{"streams.replicas", "1 to 5"}},
		{"replicas on embedded", func(c *bus.Config) { c.Streams.Replicas = 3 }, []string{"streams.replicas", "single node"}},
		{"port zero", func(c *bus.Config) { c.Embedded.Port = 0 }, []string{"embedded.port", "-1"}},
		{"port too big", func(c *bus.Config) { c.Embedded.Port = 70000 }, []string{"embedded.port"}},
		{"store dir empty", func(c *bus.Config) { c.Embedded.StoreDir = "" }, []string{"embedded.store_dir"}},
		{"host empty", func(c *bus.Config) { c.Embedded.Host = "" }, []string{"embedded.host"}},
		{"url without scheme", func(c *bus.Config) { c.URLs = []string{"nats:4222"} }, []string{"urls[0]", "scheme"}},
		{"second url empty", func(c *bus.Config) { c.URLs = []string{"nats://a:4222", ""} }, []string{"urls[1]", "empty"}},
		{"url list in one item", func(c *bus.Config) { c.URLs = []string{"nats://a:4222,nats://b:4222"} }, []string{"urls[0]", "one URL per list item"}},
		{"url scheme http", func(c *bus.Config) { c.URLs = []string{"http://a:4222"} }, []string{"urls[0]", "nats://"}},
		{"creds on embedded", func(c *bus.Config) { c.CredsFile = "x.creds" }, []string{"creds_file", "urls"}},
		{"tls on embedded", func(c *bus.Config) { c.TLS.CAFile = "ca.pem" }, []string{"tls:", "urls"}},
		{"cert without key", func(c *bus.Config) { remote(c); c.TLS.CertFile = "c.pem" }, []string{"tls.cert_file", "tls.key_file"}},
		{"failover after 1s", func(c *bus.Config) { remote(c); c.FailoverAfter = time.Second }, nil},
		{"failover after zero", func(c *bus.Config) { remote(c); c.FailoverAfter = 0 }, []string{"failover_after", "1s to 10m0s"}},
		{"failover after an hour", func(c *bus.Config) { c.FailoverAfter = time.Hour }, []string{"failover_after", "1s to 10m0s"}},
		{"zero config", func(c *bus.Config) { *c = bus.Config{} },
			[]string{"embedded.store_dir", "streams.replicas", "streams.duplicate_window", "streams.storage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := bus.DefaultConfig()
			tt.change(&cfg)
			checkValidation(t, cfg.Validate(), tt.want)
		})
	}
}

// checkValidation checks what Validate answered: nil when want is nil,
// else an error naming each of want.
func checkValidation(t *testing.T, err error, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want an error naming %q, got nil", want)
	}
	mustContain(t, err.Error(), want...)
}

func TestConfigFromYAML(t *testing.T) {
	cfg := bus.DefaultConfig()
	doc := `
urls: [nats://n1:4222, tls://n2:4222]
creds_file: /etc/iamflow/nats.creds
name: ingest
tls: {ca_file: ca.pem}
failover_after: 2s
streams:
  replicas: 3
  duplicate_window: 3h30m
  events_max_age: 336h
  storage: memory
`
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := cfg.Streams
	if s.DuplicateWindow != 3*time.Hour+30*time.Minute || s.EventsMaxAge != 336*time.Hour || s.Replicas != 3 || s.Storage != "memory" {
		t.Errorf("streams = %+v", s)
	}
	if s.DLQMaxAge != 720*time.Hour || s.AuditMaxAge != 2160*time.Hour {
		t.Errorf("defaults not kept under the yaml: %+v", s)
	}
	if len(cfg.URLs) != 2 || cfg.TLS.CAFile != "ca.pem" || cfg.Name != "ingest" || cfg.FailoverAfter != 2*time.Second {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestConsumerConfigValidateNamesTheKey(t *testing.T) {
	tests := []struct {
		name string
		cfg  bus.ConsumerConfig
		want []string
	}{
		{"durable only", bus.ConsumerConfig{Durable: "replicator-prod"}, nil},
		{"filters", bus.ConsumerConfig{Durable: "c", FilterSubjects: []string{"iam.event.*.user.*", "iam.event.dev.>"}}, nil},
		{"no durable", bus.ConsumerConfig{}, []string{"durable", "empty"}},
		{"durable with a dot", bus.ConsumerConfig{Durable: "a.b"}, []string{"durable", `"a.b"`}},
		{"stream with space", bus.ConsumerConfig{Durable: "c", Stream: "IAM EVENTS"}, []string{"stream"}},
		{"empty filter", bus.ConsumerConfig{Durable: "c", FilterSubjects: []string{"iam.event.>", ""}}, []string{"filter_subjects[1]"}},
		{"bad filter", bus.ConsumerConfig{Durable: "c", FilterSubjects: []string{"iam.>.x"}}, []string{"filter_subjects[0]", "last token"}},
		{"partial wildcard", bus.ConsumerConfig{Durable: "c", FilterSubjects: []string{"iam.ev*"}}, []string{"filter_subjects[0]", "whole tokens"}},
		{"ack wait short", bus.ConsumerConfig{Durable: "c", AckWait: 10 * time.Millisecond}, []string{"ack_wait", "1s"}},
		{"max deliver negative", bus.ConsumerConfig{Durable: "c", MaxDeliver: -1}, []string{"max_deliver"}},
		{"backoff negative", bus.ConsumerConfig{Durable: "c", Backoff: []time.Duration{time.Second, -time.Second}}, []string{"backoff[1]"}},
		{"max ack pending negative", bus.ConsumerConfig{Durable: "c", MaxAckPending: -1}, []string{"max_ack_pending"}},
		{"batch negative", bus.ConsumerConfig{Durable: "c", Batch: -1}, []string{"batch"}},
		{"concurrency negative", bus.ConsumerConfig{Durable: "c", Concurrency: -2}, []string{"concurrency"}},
		{"drain timeout negative", bus.ConsumerConfig{Durable: "c", DrainTimeout: -time.Second}, []string{"drain_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidation(t, tt.cfg.Validate(), tt.want)
		})
	}
}

func TestConsumerConfigDefaults(t *testing.T) {
	c := bus.ConsumerConfig{Durable: "c"}.WithDefaults()
	if c.Stream != bus.StreamEvents || c.AckWait != 30*time.Second || c.MaxDeliver != 10 ||
		c.MaxAckPending != 1000 || c.Batch != 100 || c.Concurrency != 4 || c.DrainTimeout != 30*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	want := []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}
	if len(c.Backoff) != len(want) {
		t.Fatalf("backoff = %v, want %v", c.Backoff, want)
	}
	for i := range want {
		if c.Backoff[i] != want[i] {
			t.Errorf("backoff = %v, want %v", c.Backoff, want)
		}
	}
	var y bus.ConsumerConfig
	if err := yaml.Unmarshal([]byte("durable: x\nbackoff: [1s, 1m30s]\nack_wait: 45s\n"), &y); err != nil {
		t.Fatal(err)
	}
	if y.Durable != "x" || y.AckWait != 45*time.Second || len(y.Backoff) != 2 || y.Backoff[1] != 90*time.Second {
		t.Errorf("yaml = %+v", y)
	}
	if !strings.Contains(bus.Terminal(nil).String(), "terminal") {
		t.Errorf("Terminal(nil) = %v", bus.Terminal(nil))
	}
}
