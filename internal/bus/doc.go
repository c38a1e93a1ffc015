// Package bus is iamflow's connection to NATS JetStream: it connects to a NATS
// cluster or starts an embedded server (monolithic mode), creates the streams
// every service relies on, publishes with deduplication and trace context,
// and runs the durable pull consumers the services share.
//
// # Streams
//
//   - IAM_EVENTS (iam.event.>): canonical identity events, deduplicated by
//     Nats-Msg-Id over a window that covers OCI's retries.
//   - IAM_DLQ (iam.dlq.<durable>): what a consumer could not do, with the
//     original payload and headers and the reason in Iamflow-Dlq-* headers.
//   - IAM_AUDIT (iam.audit.<service>.<action>): one record per action taken.
//
// # Consumers
//
// A [Handler] returns a [Result]: [Done] acks, [Retry] and [RetryAfter] nak
// with a delay until max_deliver deliveries, then dead-letter, and [Terminal]
// dead-letters at once. A message is acked only after its dead letter is
// stored, so nothing acknowledged is lost. Messages that name the same entity
// (ConsumerConfig.Coalesce) are handled once per fetch and never concurrently.
package bus
