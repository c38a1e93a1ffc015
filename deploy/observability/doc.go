// Package observability is iamflow's operations pack: a Grafana dashboard
// (grafana/dashboards/iamflow.json, with its provisioning), Prometheus
// alerting rules with runbooks (alerts.yml) and a Prometheus configuration
// (prometheus.yml) that the compose stack's "observability" profile starts.
// Its tests check the rules and the dashboard with Prometheus's own parsers
// and check that every metric they name exists in iamflow's code, so a
// renamed metric fails the build rather than a dashboard at 3 a.m.
package observability
