package observability_test

import (
	"encoding/json"
	"flag"
	"os"
	"testing"
)

// update rewrites grafana/dashboards/iamflow.json from the panels below:
//
//	go test ./deploy/observability -run TestDashboardIsGenerated -update
var update = flag.Bool("update", false, "rewrite the dashboard JSON from the panels in dashboard_test.go")

const (
	dashboardFile = "grafana/dashboards/iamflow.json"
	datasourceUID = "iamflow-prometheus"
)

// panel is one graph: a title, what it shows, its queries and unit.
type panel struct {
	title, description, unit, kind string
	queries                        []query
}

type query struct{ expr, legend string }

// rows are the dashboard: each row a part of iamflow, its panels two a line.
var rows = []struct {
	title  string
	panels []panel
}{
	{"Ingest: the webhook OCI calls", []panel{
		{title: "Webhook answers", unit: "reqps", description: "Requests to POST /v1/events by HTTP status. 202: stored; 503: JetStream did not acknowledge in time (OCI retries).",
			queries: []query{{`sum by (code) (rate(iamflow_ingest_requests_total[5m]))`, "{{code}}"}}},
		{title: "Events received", unit: "ops", description: "Identity events by outcome: published, duplicate (a redelivery stored once), unknown_type, unknown_domain.",
			queries: []query{{`sum by (outcome) (rate(iamflow_ingest_events_total[5m]))`, "{{outcome}}"}}},
		{title: "Webhook latency", unit: "s", description: "Time to answer OCI, the JetStream acknowledgement included.",
			queries: []query{
				{`histogram_quantile(0.5, sum by (le) (rate(iamflow_ingest_request_seconds_bucket[5m])))`, "p50"},
				{`histogram_quantile(0.99, sum by (le) (rate(iamflow_ingest_request_seconds_bucket[5m])))`, "p99"}}},
		{title: "Events published to JetStream", unit: "ops", description: "Messages published by stream and outcome (stored, duplicate, error).",
			queries: []query{{`sum by (stream, outcome) (rate(iamflow_bus_published_messages_total[5m]))`, "{{stream}} {{outcome}}"}}},
	}},
	{"Consumers: lag and dead letters", []panel{
		{title: "Consumer lag", unit: "s", description: "Age of the oldest event each consumer has not acknowledged (0: caught up). Alert: IamflowConsumerLagging.",
			queries: []query{{`max by (consumer) (iamflow_bus_consumer_lag_seconds)`, "{{consumer}}"}}},
		{title: "Events waiting", unit: "short", description: "Stored and not yet delivered, plus delivered and not yet acknowledged.",
			queries: []query{{`max by (consumer) (iamflow_bus_consumer_pending_messages) + max by (consumer) (iamflow_bus_consumer_ack_pending_messages)`, "{{consumer}}"}}},
		{title: "Dead letters waiting", unit: "short", description: "Messages in IAM_DLQ per consumer: each needs a person. Alert: IamflowDeadLettersGrowing.",
			queries: []query{{`max by (consumer) (iamflow_bus_dead_letters)`, "{{consumer}}"}}},
		{title: "Messages handled", unit: "ops", description: "Settled by each consumer: done, retry, terminal, dead_lettered.",
			queries: []query{{`sum by (consumer, result) (rate(iamflow_bus_handled_messages_total[5m]))`, "{{consumer}} {{result}}"}}},
	}},
	{"Replication", []panel{
		{title: "Actions per link", unit: "ops", description: "What the replicator did per link and target, by kind (skips left out).",
			queries: []query{{`sum by (link, target, kind) (rate(iamflow_replicator_actions_total{kind!="skip"}[5m]))`, "{{link}} → {{target}} {{kind}}"}}},
		{title: "Events per link", unit: "ops", description: "Events the replicator handled per link and target, ok or error.",
			queries: []query{{`sum by (link, target, result) (rate(iamflow_replicator_events_total[5m]))`, "{{link}} → {{target}} {{result}}"}}},
		{title: "Held deletions", unit: "short", description: "Deletions the mass-deletion guard holds for approval. Alert: IamflowHeldDeletionWaiting.",
			queries: []query{{`max by (link, target) (iamflow_replicator_held_deletions)`, "{{link}} → {{target}}"}}},
		{title: "Time to replicate an event", unit: "s", description: "Reads, plan and writes for one event's entity, per target.",
			queries: []query{{`histogram_quantile(0.99, sum by (target, le) (rate(iamflow_replicator_event_duration_seconds_bucket[5m])))`, "p99 {{target}}"}}},
	}},
	{"Identity Domains: rate limits and retries", []panel{
		{title: "429 answers per domain", unit: "reqps", description: "Requests an identity domain refused for its rate limit.",
			queries: []query{{`sum by (domain) (rate(iamflow_identitydomain_requests_total{code="429"}[5m]))`, "{{domain}}"}}},
		{title: "Retries per domain", unit: "reqps", description: "Requests sent again, by reason: 429, 5xx, timeout, network, unauthorized.",
			queries: []query{{`sum by (domain, reason) (rate(iamflow_identitydomain_retries_total[5m]))`, "{{domain}} {{reason}}"}}},
		{title: "Circuit breaker open", unit: "short", description: "1 while a domain's breaker is open or half-open. Alert: IamflowCircuitOpen.",
			queries: []query{{`max by (domain) (iamflow_identitydomain_breaker_open)`, "{{domain}}"}}},
		{title: "Waiting for the client-side rate limit", unit: "s", description: "p99 of the time requests waited for their domain's token bucket.",
			queries: []query{{`histogram_quantile(0.99, sum by (domain, le) (rate(iamflow_identitydomain_rate_limit_wait_seconds_bucket[5m])))`, "{{domain}}"}}},
	}},
	{"Temporary access", []panel{
		{title: "Grant lateness", unit: "s", description: "From a grant's deadline to its membership being removed.",
			queries: []query{
				{`histogram_quantile(0.5, sum by (le) (rate(iamflow_expiry_lateness_seconds_bucket[15m])))`, "p50"},
				{`histogram_quantile(0.99, sum by (le) (rate(iamflow_expiry_lateness_seconds_bucket[15m])))`, "p99"}}},
		{title: "Grants", unit: "short", description: "Active grants, and overdue ones (past the deadline, membership still there: alert IamflowGrantRevocationLate).",
			queries: []query{{`max(iamflow_expiry_active_grants)`, "active"}, {`max(iamflow_expiry_overdue_grants)`, "overdue"},
				{`sum(increase(iamflow_expiry_timers_missed_total[15m]))`, "timers missed (15m)"}}},
		{title: "Revocations", unit: "ops", description: "Membership removals by action (expire, revoke) and outcome.",
			queries: []query{{`sum by (action, outcome) (rate(iamflow_expiry_revocations_total[15m]))`, "{{action}} {{outcome}}"}}},
	}},
	{"Databases", []panel{
		{title: "Statements run", unit: "ops", description: "SQL statements per database, action and outcome.",
			queries: []query{{`sum by (database, action, outcome) (rate(iamflow_dbprovisioner_statements_total[5m]))`, "{{database}} {{action}} {{outcome}}"}}},
		{title: "Database errors", unit: "ops", description: "ORA- errors per database.",
			queries: []query{{`sum by (database, ora) (rate(iamflow_ords_statement_errors_total[5m]))`, "{{database}} {{ora}}"}}},
	}},
}

// build is the Grafana dashboard JSON model of rows.
func build() map[string]any {
	ds := map[string]any{"type": "prometheus", "uid": datasourceUID}
	var panels []any
	id, y := 1, 0
	for _, r := range rows {
		panels = append(panels, map[string]any{"id": id, "type": "row", "title": r.title, "collapsed": false, "panels": []any{},
			"gridPos": map[string]int{"h": 1, "w": 24, "x": 0, "y": y}})
		id++
		y++
		for i, p := range r.panels {
			var targets []any
			for j, q := range p.queries {
				targets = append(targets, map[string]any{"refId": string(rune('A' + j)), "datasource": ds, "expr": q.expr, "legendFormat": q.legend})
			}
			panels = append(panels, map[string]any{
				"id": id, "type": "timeseries", "title": p.title, "description": p.description, "datasource": ds, "targets": targets,
				"gridPos":     map[string]int{"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8*(i/2)},
				"fieldConfig": map[string]any{"defaults": map[string]any{"unit": p.unit, "min": 0}, "overrides": []any{}},
				"options":     map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true}, "tooltip": map[string]any{"mode": "multi", "sort": "desc"}},
			})
			id++
		}
		y += 8 * ((len(r.panels) + 1) / 2)
	}
	return map[string]any{
		"uid": "iamflow", "title": "iamflow", "description": "iamflow: ingest, consumers, replication, identity domains, temporary access, databases.",
		"tags": []string{"iamflow"}, "timezone": "browser", "editable": false, "schemaVersion": 39, "version": 1,
		"refresh": "30s", "time": map[string]string{"from": "now-6h", "to": "now"},
		"templating": map[string]any{"list": []any{}}, "annotations": map[string]any{"list": []any{}},
		"panels": panels,
	}
}

// The committed dashboard is what the panels above generate.
func TestDashboardIsGenerated(t *testing.T) {
	want, err := json.MarshalIndent(build(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(dashboardFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is not what dashboard_test.go generates: edit the panels there and run go test ./deploy/observability -run TestDashboardIsGenerated -update", dashboardFile)
	}
}
