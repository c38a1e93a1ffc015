package observability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/iamflow/iamflow/internal/app"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/identitydomain"
	ordsclient "github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/services/dbprovisioner"
	"github.com/iamflow/iamflow/services/expiry"
	"github.com/iamflow/iamflow/services/replicator"
)

// Labels Prometheus adds to every scraped series (job, instance) and the
// one prometheus.yml adds (service).
var scrapeLabels = []string{"job", "instance", "service"}

// promql is Prometheus's PromQL parser with its default options.
var promql = parser.NewParser(parser.Options{})

// Metrics Prometheus makes itself.
var prometheusMetrics = map[string][]string{"up": nil, "scrape_duration_seconds": nil}

var (
	codeOnce    sync.Once
	codeMetrics map[string][]string // metric name -> its labels
	codeErr     error
	descRE      = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^}]*)\}\}$`)
)

// metricsInCode is every metric iamflow registers, with its labels: an App
// with every service built from a configuration (as `iamflow serve all`
// does, the domains and database pointing nowhere: nothing is called), and
// the descriptors of everything on its registry.
func metricsInCode(t *testing.T) map[string][]string {
	t.Helper()
	codeOnce.Do(func() { codeMetrics, codeErr = buildMetrics(t) })
	if codeErr != nil {
		t.Fatal(codeErr)
	}
	return codeMetrics
}

func buildMetrics(t *testing.T) (map[string][]string, error) {
	dir, err := os.MkdirTemp("", "iamflow-metrics-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ref := func(name, v string) secret.Ref {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return secret.Ref("file:" + p)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	cfg := config.Default()
	cfg.Telemetry.LogLevel = "error"
	cfg.NATS.Embedded.StoreDir = filepath.Join(dir, "nats")
	cfg.NATS.Embedded.Port = -1
	cfg.Admin.GRPCAddr, cfg.Admin.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Admin.Token = ref("token", "metrics-test-admin-token-0123")
	cfg.Ingest.Password = ref("webhook", "metrics-test-webhook-0123456")
	for _, n := range []string{"src", "tgt"} {
		api := identitydomain.DefaultConfig()
		api.URL, api.ClientID, api.ClientSecret = "http://127.0.0.1:1", "iamflow", ref("client", "metrics-test-client-secret")
		cfg.Domains = append(cfg.Domains, config.Domain{Name: n, OCIName: n, ID: "id-" + n, Config: api})
	}
	cfg.Replicator.Links = []replicator.Link{{Name: "main", Source: "src", Targets: []string{"tgt"}}}
	cfg.Expiry.Groups = []expiry.TemporaryGroup{{Domain: "src", Group: "Temp-Admins", DefaultDuration: time.Hour, MaxDuration: time.Hour}}
	oc := ordsclient.DefaultConfig()
	oc.URL, oc.ClientID, oc.ClientSecret = "http://127.0.0.1:1/ords/db1", "iamflow", ref("ords", "metrics-test-ords-secret-01")
	cfg.Dbprovisioner.Databases = []dbprovisioner.DatabaseConfig{{Name: "db1", Domain: "src", ORDS: oc,
		Groups: []dbprovisioner.GroupMapping{{Group: "DB Users", Roles: []string{"APP_READER"}}}}}
	cfg.Dbprovisioner.Reconcile = dbprovisioner.ReconcileConfig{}

	a, err := app.New(context.Background(), cfg, []string{"all"}, app.WithIngestListener(ln))
	if err != nil {
		return nil, fmt.Errorf("build every service: %w", err)
	}
	defer a.Close()
	if got := len(a.Services()); got != len(app.ServiceNames()) {
		return nil, fmt.Errorf("built %v, want every service %v", a.Services(), app.ServiceNames())
	}
	ch := make(chan *prometheus.Desc, 64)
	go func() { a.Admin().Registry().Describe(ch); close(ch) }()
	out := map[string][]string{}
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			return nil, fmt.Errorf("cannot read the descriptor %s", d)
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				labels = append(labels, l)
			}
		}
		out[m[1]] = labels
	}
	for name, labels := range prometheusMetrics {
		out[name] = labels
	}
	return out, nil
}

// lookup finds a series name in the metrics: a histogram's _bucket, _sum
// and _count series belong to the histogram (and _bucket has le).
func lookup(metrics map[string][]string, name string) ([]string, bool) {
	if l, ok := metrics[name]; ok {
		return l, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if l, ok := metrics[base]; ok {
				if suffix == "_bucket" {
					l = append(slices.Clone(l), "le")
				}
				return l, true
			}
		}
	}
	return nil, false
}

// checkExpr parses a PromQL expression and checks that every metric it
// selects exists in iamflow's code, that every label it matches on is one
// of that metric's, and that every label it groups by is one of the
// metrics' below it.
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return
	}
	metrics := metricsInCode(t)
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			labels, ok := lookup(metrics, n.Name)
			if !ok {
				t.Errorf("%s: metric %s is not one iamflow exports (renamed or removed?)", where, n.Name)
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name != "__name__" && !slices.Contains(labels, m.Name) && !slices.Contains(scrapeLabels, m.Name) {
					t.Errorf("%s: %s has no label %q (it has %v)", where, n.Name, m.Name, labels)
				}
			}
		case *parser.AggregateExpr:
			have := slices.Clone(scrapeLabels)
			parser.Inspect(n.Expr, func(inner parser.Node, _ []parser.Node) error {
				if vs, ok := inner.(*parser.VectorSelector); ok {
					l, _ := lookup(metrics, vs.Name)
					have = append(have, l...)
				}
				return nil
			})
			for _, g := range n.Grouping {
				if !slices.Contains(have, g) {
					t.Errorf("%s: groups by %q, which none of its metrics has (%v)", where, g, have)
				}
			}
		}
		return nil
	})
}

// The concerns the rules must cover, by alert name.
var wantAlerts = []string{
	"IamflowDeadLettersGrowing", "IamflowConsumerLagging", "IamflowCircuitOpen", "IamflowIngestServerErrors",
	"IamflowHeldDeletionWaiting", "IamflowGrantRevocationLate",
}

func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile("alerts.yml", false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("alerts.yml: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	var names []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a recording rule (%s); this file holds alerts only", g.Name, r.Record)
				continue
			}
			names = append(names, r.Alert)
			where := "alert " + r.Alert
			if sev := r.Labels["severity"]; !slices.Contains([]string{"info", "warning", "critical"}, sev) {
				t.Errorf("%s: severity %q, want info, warning or critical", where, sev)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if len(strings.TrimSpace(r.Annotations[a])) < 20 {
					t.Errorf("%s: annotation %s is missing or too short to help anyone: %q", where, a, r.Annotations[a])
				}
			}
			checkExpr(t, where, r.Expr)
		}
	}
	for _, want := range wantAlerts {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// A rule over a metric iamflow does not export is caught: the check can fail.
func TestCheckCatchesRenamedMetric(t *testing.T) {
	inner := &testing.T{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkExpr(inner, "probe", `sum by (consumer) (iamflow_bus_dead_letter_count)`)
	}()
	<-done
	if !inner.Failed() {
		t.Error("an expression over a metric that does not exist passed the check")
	}
	inner = &testing.T{}
	done = make(chan struct{})
	go func() {
		defer close(done)
		checkExpr(inner, "probe", `sum by (kind) (iamflow_bus_dead_letters{consumer="x"})`)
	}()
	<-done
	if !inner.Failed() {
		t.Error("grouping by a label the metric does not have passed the check")
	}
}

// The dashboard's queries parse and name metrics iamflow exports; its
// panels use the provisioned data source and fit Grafana's 24-column grid
// without overlapping.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string
		Panels []struct {
			ID         int
			Type       string
			Title      string
			Datasource struct{ UID string }
			GridPos    struct{ H, W, X, Y int }
			Targets    []struct {
				RefID      string
				Expr       string
				Datasource struct{ UID string }
			}
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var prov struct {
		Datasources []struct{ UID, Type, URL string }
	}
	pdata, err := os.ReadFile("grafana/provisioning/datasources/prometheus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(pdata, &prov); err != nil || len(prov.Datasources) != 1 || prov.Datasources[0].Type != "prometheus" {
		t.Fatalf("data source provisioning: %v %+v", err, prov)
	}
	uid := prov.Datasources[0].UID
	ids := map[int]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	var queries int
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v does not fit 24 columns", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap", other, p.Title)
				}
				used[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != uid || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q and %d queries, want %q and at least one", p.Title, p.Datasource.UID, len(p.Targets), uid)
		}
		for _, q := range p.Targets {
			queries++
			if q.Datasource.UID != uid {
				t.Errorf("panel %q query %s: data source %q", p.Title, q.RefID, q.Datasource.UID)
			}
			checkExpr(t, fmt.Sprintf("panel %q query %s", p.Title, q.RefID), q.Expr)
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries", queries)
	}
	// Every alert's metric is on the dashboard too, so an alert can be read there.
	for _, m := range []string{"iamflow_bus_dead_letters", "iamflow_bus_consumer_lag_seconds", "iamflow_identitydomain_breaker_open",
		"iamflow_ingest_requests_total", "iamflow_replicator_held_deletions", "iamflow_expiry_overdue_grants", "iamflow_expiry_lateness_seconds_bucket",
		"iamflow_identitydomain_retries_total", "iamflow_replicator_actions_total", "iamflow_ingest_events_total"} {
		if !strings.Contains(string(data), m) {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}
