// Package servicekit is what every iamflow service is built from, so a
// service is its own logic plus about a hundred lines of wiring.
//
// # What a service gets
//
//   - Options ([WithLogger], [WithTelemetry], [WithRegisterer],
//     [WithAuditWriter], [WithClock], [WithVersion]), the same for every
//     service, resolved by [New] into a [Kit]: a logger, a tracer named
//     after the service, the Prometheus registerer, the audit sink, the
//     clock and the version.
//   - [Kit.Run], a service's Run: it refuses a second concurrent run, moves
//     the state STARTING → RUNNING → STOPPING, runs the service's consumers
//     and background loops ([Work]) until the context ends, and stops them
//     all when one consumer fails, so the process can be restarted whole.
//   - The status every service reports ([Kit.Status], [Kit.Report]): name,
//     version, uptime, state, the consumers' progress read from the server,
//     and the last event and last error ([Kit.Event], [Kit.Error]).
//   - [Kit.Audit]: one audit record stored, or logged and remembered as
//     the last error when it cannot be (the change it describes is made).
//   - [Kit.EventHandler] and [CoalesceEvents]: a consumer's handler and
//     its coalescing key, given identity events already decoded.
//   - [RepairConfig]: when a service's periodic repair (a sweep, a full
//     reconcile) runs, at start, every interval and after an outage of NATS,
//     and the loops that run it.
//   - The admin API's edges: [NewEndpoint] ties a service to its generated
//     gRPC service and REST gateway, and [APIErrors] maps its errors to
//     gRPC status codes, so api.go is the only file of a service that knows
//     status codes; [PageSize] reads a list call's page size.
//   - [OpenBucket]: the KV bucket a service keeps its state in, placed as
//     the bus places its streams; [Records], its records of one kind read,
//     created and changed by compare-and-set ([ErrConflict] when another
//     writer came first).
//
// # The contract a service keeps
//
// A service's handler returns what bus.ResultOf makes of its error unless
// the service knows better (an entity that is gone is done); its errors
// carry names, ids and server messages, never credentials, because they
// reach logs, status and dead letters. State that must survive a restart
// lives in JetStream, never only in a Kit.
package servicekit
