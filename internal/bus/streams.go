package bus

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/event"
)

// Stream names and the subjects they store.
const (
	// StreamEvents stores identity events.
	StreamEvents = "IAM_EVENTS"
	// EventsSubjects is StreamEvents's subject filter.
	EventsSubjects = event.AllSubjects

	// StreamDLQ stores dead letters, one subject per consumer.
	StreamDLQ = "IAM_DLQ"
	// DLQSubjectPrefix is followed by a consumer's durable name: iam.dlq.<durable>.
	DLQSubjectPrefix = "iam.dlq"
	// DLQSubjects is StreamDLQ's subject filter.
	DLQSubjects = DLQSubjectPrefix + ".>"

	// StreamAudit stores audit records.
	StreamAudit = "IAM_AUDIT"
	// AuditSubjectPrefix is followed by service and action: iam.audit.<service>.<action>.
	AuditSubjectPrefix = "iam.audit"
	// AuditSubjects is StreamAudit's subject filter.
	AuditSubjects = AuditSubjectPrefix + ".>"
)

// DLQSubject is where the dead letters of the consumer durable are stored.
func DLQSubject(durable string) string { return DLQSubjectPrefix + "." + durable }

// AuditSubject is where an audit record of service's action is stored.
func AuditSubject(service, action string) string {
	return AuditSubjectPrefix + "." + service + "." + action
}

// storageType is the JetStream storage the streams config asks for.
func (c StreamsConfig) storageType() jetstream.StorageType {
	if c.Storage == StorageMemory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// Placement is the storage and replica count configured for iamflow's
// streams; services that create streams or KV buckets of their own use it, so
// every piece of state follows nats.streams (e.g. replicas 3 on a cluster).
func (b *Bus) Placement() (jetstream.StorageType, int) {
	return b.cfg.Streams.storageType(), b.cfg.Streams.Replicas
}

// streamConfigs are the streams Open creates or updates from cfg.
func streamConfigs(cfg StreamsConfig) []jetstream.StreamConfig {
	storage := cfg.storageType()
	mk := func(name, desc, subjects string, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subjects},
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			Storage:     storage,
			Replicas:    cfg.Replicas,
			MaxAge:      maxAge,
			// The window cannot exceed the age limit; Validate keeps it
			// within events_max_age, and the other streams only need it
			// to cover redeliveries.
			Duplicates: min(cfg.DuplicateWindow, maxAge),
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamEvents, "iamflow identity events", EventsSubjects, cfg.EventsMaxAge),
		mk(StreamDLQ, "iamflow dead letters, one subject per consumer", DLQSubjects, cfg.DLQMaxAge),
		mk(StreamAudit, "iamflow audit records", AuditSubjects, cfg.AuditMaxAge),
	}
}

// ensureStreams creates the streams, or updates them to cfg if they exist.
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	for _, sc := range streamConfigs(cfg) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("create or update stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// streamOf names the stream a subject of ours is stored in, for metric labels.
func streamOf(subject string) string {
	switch {
	case strings.HasPrefix(subject, event.SubjectPrefix+"."):
		return StreamEvents
	case strings.HasPrefix(subject, DLQSubjectPrefix+"."):
		return StreamDLQ
	case strings.HasPrefix(subject, AuditSubjectPrefix+"."):
		return StreamAudit
	}
	return "other"
}
