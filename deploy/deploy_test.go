package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	ordsemu "github.com/iamflow/iamflow/emulator/ords"
	"github.com/iamflow/iamflow/internal/app"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/cli"
	"github.com/iamflow/iamflow/internal/secret"
)

// composeEnv is the environment the compose files are interpolated with: the
// variables compose.yaml requires, as a user would export them.
var composeEnv = map[string]string{
	"ADMIN_TOKEN":            "test-admin-token",
	"WEBHOOK_PASSWORD":       "test-webhook-password",
	"EMULATOR_CLIENT_SECRET": "test-emulator-secret",
}

const (
	iamflowImage  = "iamflow:local"
	configTarget  = "/etc/iamflow/iamflow.yaml"
	healthProgram = "/usr/local/bin/httpcheck"
)

// load reads a compose file with the compose-go loader, with the given
// profiles enabled and only composeEnv (not the test's environment).
func load(t *testing.T, file string, profiles ...string) *types.Project {
	t.Helper()
	env := make([]string, 0, len(composeEnv))
	for k, v := range composeEnv {
		env = append(env, k+"="+v)
	}
	opts, err := composecli.NewProjectOptions([]string{file},
		composecli.WithWorkingDirectory("."),
		composecli.WithEnv(env),
		composecli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatalf("compose options for %s: %v", file, err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return p
}

// iamflowServices are the enabled services that run the iamflow image, by name.
func iamflowServices(p *types.Project) map[string]types.ServiceConfig {
	out := map[string]types.ServiceConfig{}
	for name, s := range p.Services {
		if s.Image == iamflowImage {
			out[name] = s
		}
	}
	return out
}

func env(s types.ServiceConfig, name string) (string, bool) {
	v, ok := s.Environment[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// Every service of the stack starts with a plain `docker compose up`: none
// is behind a profile.
func TestComposeStartsEverything(t *testing.T) {
	p := load(t, "compose.yaml") // what `docker compose up` starts
	for name, s := range p.Services {
		if len(s.Profiles) > 0 {
			t.Errorf("service %s has profiles %q; every service of the stack should start by default", name, s.Profiles)
		}
	}
	for name, s := range p.DisabledServices {
		if !slices.Equal(s.Profiles, []string{"observability"}) {
			t.Errorf("service %s has profiles %q; only the operations pack (observability) is optional", name, s.Profiles)
		}
	}
	for _, want := range []string{"nats", "jaeger", "pod", "ingest", "capabilities", "expiry", "replicator", "dbprovisioner", "emu-src", "emu-tgt", "emu-ords"} {
		if _, ok := p.Services[want]; !ok {
			t.Errorf("service %s is not started by default", want)
		}
	}
}

func TestComposeServices(t *testing.T) {
	p := load(t, "compose.yaml")
	known := app.ServiceNames()
	served := map[string]string{} // iamflow service -> compose service
	for name, s := range iamflowServices(p) {
		if len(s.Command) == 0 {
			t.Errorf("service %s: no command", name)
			continue
		}
		switch s.Command[0] {
		case "serve":
			checkServe(t, p, name, s, known)
			if len(s.Command) == 2 {
				if other, dup := served[s.Command[1]]; dup {
					t.Errorf("services %s and %s both serve %s", other, name, s.Command[1])
				}
				served[s.Command[1]] = name
			}
		case "emulate":
			checkEmulate(t, name, s)
		default:
			t.Errorf("service %s: command %q is neither serve nor emulate", name, s.Command)
		}
	}
	for _, n := range known {
		if _, ok := served[n]; !ok {
			t.Errorf("no container runs `iamflow serve %s`", n)
		}
	}
}

func checkServe(t *testing.T, p *types.Project, name string, s types.ServiceConfig, known []string) {
	t.Helper()
	if len(s.Command) != 2 {
		t.Errorf("service %s: command %q, want [serve <one service>] (one service per container)", name, s.Command)
		return
	}
	if svc := s.Command[1]; !slices.Contains(known, svc) {
		t.Errorf("service %s: `serve %s` is not a service of this build (%s)", name, svc, strings.Join(known, ", "))
	}
	if d, ok := s.DependsOn["nats"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("service %s: depends_on nats = %+v, want condition service_healthy", name, d)
	}
	if v, _ := env(s, "OTEL_EXPORTER_OTLP_ENDPOINT"); !strings.Contains(v, "jaeger:4317") {
		t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT = %q, want the jaeger OTLP endpoint", name, v)
	}
	httpAddr, ok := env(s, "IAMFLOW_ADMIN_HTTP_ADDR")
	if !ok {
		t.Errorf("service %s: IAMFLOW_ADMIN_HTTP_ADDR not set; containers share a network namespace, so each needs its own admin port", name)
		return
	}
	_, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		t.Errorf("service %s: IAMFLOW_ADMIN_HTTP_ADDR %q: %v", name, httpAddr, err)
		return
	}
	checkHealth(t, name, s, "http://127.0.0.1:"+port+"/readyz")
	if !published(p, s, port) {
		t.Errorf("service %s: admin port %s is not published on the host", name, port)
	}
}

// published reports whether port of service s is published: by s itself, or
// by the service whose network namespace it shares.
func published(p *types.Project, s types.ServiceConfig, port string) bool {
	owner := s
	if holder, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
		owner = p.AllServices()[holder]
	}
	for _, pc := range owner.Ports {
		if fmt.Sprint(pc.Target) == port && pc.Published != "" {
			return true
		}
	}
	return false
}

func checkHealth(t *testing.T, name string, s types.ServiceConfig, wantURL string) {
	t.Helper()
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) == 0 {
		t.Errorf("service %s: no health check", name)
		return
	}
	if want := []string{"CMD", healthProgram, wantURL}; !slices.Equal(hc.Test, want) {
		t.Errorf("service %s: health check %q, want %q", name, hc.Test, want)
	}
}

var flagName = regexp.MustCompile(`^--?([A-Za-z0-9-]+)(=.*)?$`)

func checkEmulate(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	if len(s.Command) < 3 {
		t.Errorf("service %s: command %q, want emulate <emulator> [flags] NAME...", name, s.Command)
		return
	}
	sub := s.Command[1]
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), []string{"emulate", sub, "-h"}, &stdout, &stderr)
	if code != 0 {
		t.Errorf("service %s: `iamflow emulate %s` is not an emulator (exit %d: %s)", name, sub, code, stderr.String())
		return
	}
	help := stdout.String()
	var listen, seed string
	var names []string
	for _, arg := range s.Command[2:] {
		m := flagName.FindStringSubmatch(arg)
		if m == nil {
			names = append(names, arg)
			continue
		}
		if !strings.Contains(help, "  -"+m[1]+" ") && !strings.Contains(help, "  -"+m[1]+"\n") {
			t.Errorf("service %s: flag %s is not a flag of `iamflow emulate %s`", name, arg, sub)
		}
		if m[2] == "" {
			t.Errorf("service %s: write flag %s as --name=value, so flags and names cannot be confused", name, arg)
			continue
		}
		value := m[2][1:]
		switch m[1] {
		case "addr":
			listen = value
		case "seed":
			seed = value
		case "client-secret", "webhook-password":
			checkEnvRef(t, name, s, secret.Ref(value))
		}
	}
	if len(names) == 0 {
		t.Errorf("service %s: no domain or database name after the flags", name)
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Errorf("service %s: --addr %q: %v", name, listen, err)
		return
	}
	checkHealth(t, name, s, "http://127.0.0.1:"+port+"/_emulator/stats")
	if seed != "" {
		checkSeed(t, name, s, sub, seed, names)
	}
}

// checkSeed loads the seed file mounted at target into the emulator the
// service runs: an emulated domain, or an emulated ORDS serving names.
func checkSeed(t *testing.T, name string, s types.ServiceConfig, emulator, target string, names []string) {
	t.Helper()
	src := mountSource(s, target)
	if src == "" {
		t.Errorf("service %s: --seed %s is not a mounted file", name, target)
		return
	}
	if emulator == "ords" {
		cfg := ordsemu.Config{}
		for _, n := range names {
			cfg.Databases = append(cfg.Databases, ordsemu.Database{Alias: n, ClientID: "seedcheck", ClientSecret: "seedcheck-secret"})
		}
		e, err := ordsemu.New(cfg)
		if err != nil {
			t.Errorf("service %s: databases %v: %v", name, names, err)
			return
		}
		defer e.Close()
		if err := e.SeedFile(src); err != nil {
			t.Errorf("service %s: seed %s: %v", name, src, err)
		}
		return
	}
	d, err := identitydomain.New(identitydomain.Config{
		Name:    "seedcheck",
		Clients: []identitydomain.Client{{ID: "seedcheck", Secret: "seedcheck-secret"}},
	})
	if err != nil {
		t.Fatalf("emulated domain: %v", err)
	}
	defer d.Close()
	if err := d.SeedFile(src); err != nil {
		t.Errorf("service %s: seed %s: %v", name, src, err)
	}
}

// mountSource is the host path mounted at target in s, or "".
func mountSource(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Target == target && v.Type == types.VolumeTypeBind {
			return v.Source
		}
	}
	return ""
}

// checkEnvRef checks that an env: secret reference names a variable the
// container has, and that this variable is not also a setting override.
func checkEnvRef(t *testing.T, name string, s types.ServiceConfig, ref secret.Ref) {
	t.Helper()
	if ref.IsZero() {
		return
	}
	if err := ref.Validate(); err != nil {
		t.Errorf("service %s: secret reference: %v", name, err)
		return
	}
	if ref.Scheme() != "env" {
		return
	}
	v := strings.TrimPrefix(string(ref), "env:")
	if val, ok := env(s, v); !ok || val == "" {
		t.Errorf("service %s: secret reference %s, but the container has no %s", name, ref, v)
	}
	if slices.Contains(config.EnvNames(), v) {
		t.Errorf("service %s: secret variable %s is also the override of a setting; name it otherwise", name, v)
	}
}

// TestComposeConfig loads the mounted configuration the way each `iamflow
// serve` container does: the file, then the container's IAMFLOW_* variables,
// then validation; and resolves every env: secret against the container.
func TestComposeConfig(t *testing.T) {
	p := load(t, "compose.yaml")
	overrides := append(config.EnvNames(), "IAMFLOW_CONFIG", "IAMFLOW_NATS_URL")
	checked := 0
	for name, s := range iamflowServices(p) {
		for k := range s.Environment {
			if strings.HasPrefix(k, config.EnvPrefix) && !slices.Contains(overrides, k) {
				t.Errorf("service %s: %s is not a setting (see `iamflow config check --env`)", name, k)
			}
		}
		if len(s.Command) == 0 || s.Command[0] != "serve" {
			continue
		}
		path, _ := env(s, "IAMFLOW_CONFIG")
		if path != configTarget {
			t.Errorf("service %s: IAMFLOW_CONFIG = %q, want %s", name, path, configTarget)
			continue
		}
		src := mountSource(s, configTarget)
		if src == "" {
			t.Errorf("service %s: nothing mounted at %s", name, configTarget)
			continue
		}
		lookup := func(k string) (string, bool) { return env(s, k) }
		cfg, err := config.Load(src, lookup)
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("service %s: %s does not validate:\n%v", name, src, err)
		}
		if want, _ := env(s, "IAMFLOW_ADMIN_HTTP_ADDR"); cfg.Admin.HTTPAddr != want {
			t.Errorf("service %s: admin.http_addr = %q after overrides, want %q", name, cfg.Admin.HTTPAddr, want)
		}
		refs := []secret.Ref{cfg.Admin.Token, cfg.Ingest.Password}
		loopback := func(what, raw string) {
			if u, err := url.Parse(raw); err == nil && u.Scheme == "http" && !slices.Contains([]string{"127.0.0.1", "localhost", "::1"}, u.Hostname()) {
				t.Errorf("service %s: %s at %s: iamflow refuses http to a non-loopback host", name, what, raw)
			}
		}
		for _, d := range cfg.Domains {
			refs = append(refs, d.ClientSecret, d.StaticToken)
			loopback("domain "+d.Name, d.URL)
		}
		for _, db := range cfg.Dbprovisioner.Databases {
			refs = append(refs, db.ORDS.ClientSecret, db.ORDS.Password)
			loopback("database "+db.Name, db.ORDS.URL)
		}
		for _, r := range refs {
			checkEnvRef(t, name, s, r)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no `iamflow serve` container found")
	}
}

// TestComposeConfigConfiguresEveryService: `iamflow serve <service>` fails
// when its section gives it nothing to do, so the stack's configuration
// configures every service a container serves, and the replicator and the
// DB provisioner work with the emulators of the stack.
func TestComposeConfigConfiguresEveryService(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("compose", "iamflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("# TODO(")) {
		t.Error("compose/iamflow.yaml still has a TODO marker")
	}
	cfg, err := config.Load(filepath.Join("compose", "iamflow.yaml"), func(k string) (string, bool) { v, ok := composeEnv[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Replicator.Links; len(l) != 1 || l[0].Source != "src" || !slices.Equal(l[0].Targets, []string{"tgt"}) {
		t.Errorf("replicator.links = %+v, want src -> tgt", l)
	}
	dbs := cfg.Dbprovisioner.Databases
	if len(dbs) != 1 || dbs[0].Domain != "src" || !strings.HasSuffix(dbs[0].ORDS.URL, "/ords/db1") {
		t.Fatalf("dbprovisioner.databases = %+v, want db1 on src", dbs)
	}
	// The database's URL is the emulated ORDS of emu-ords, its roles are seeded there.
	p := load(t, "compose.yaml")
	emu, ok := p.Services["emu-ords"]
	if !ok {
		t.Fatal("no emu-ords service")
	}
	cmd := strings.Join(emu.Command, " ")
	u, err := url.Parse(dbs[0].ORDS.URL)
	if err != nil || !strings.Contains(cmd, "--addr=0.0.0.0:"+u.Port()) || !strings.HasSuffix(cmd, " db1") || !strings.Contains(cmd, "--client-id="+dbs[0].ORDS.ClientID) {
		t.Errorf("emu-ords command %q does not serve %s", cmd, dbs[0].ORDS.URL)
	}
	seed, err := os.ReadFile(filepath.Join("compose", "ords-seed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range dbs[0].Groups {
		for _, r := range g.Roles {
			if !bytes.Contains(seed, []byte("name: "+r)) {
				t.Errorf("role %s of group %s is not seeded in compose/ords-seed.yaml", r, g.Group)
			}
		}
	}
	if d, ok := p.Services["dbprovisioner"].DependsOn["emu-ords"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("dbprovisioner: depends_on emu-ords = %+v, want service_healthy", d)
	}
}

func TestComposeNATS(t *testing.T) {
	p := load(t, "compose.yaml")
	n, ok := p.Services["nats"]
	if !ok {
		t.Fatal("no nats service")
	}
	checkNATSNode(t, "nats", n)
	if !slices.ContainsFunc(n.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/data" && v.Type == types.VolumeTypeVolume }) {
		t.Error("nats: JetStream store /data is not a named volume")
	}
}

func checkNATSNode(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	cmd := strings.Join(s.Command, " ")
	for _, want := range []string{"-js", "-sd /data", "-m 8222"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("%s: command %q lacks %q", name, cmd, want)
		}
	}
	if hc := s.HealthCheck; hc == nil || hc.Disable || !strings.Contains(strings.Join(hc.Test, " "), "http://127.0.0.1:8222/healthz") {
		t.Errorf("%s: health check %+v, want one against the monitoring port's /healthz", name, hc)
	}
}

func TestNATSCluster(t *testing.T) {
	p := load(t, "nats-cluster.compose.yaml")
	if len(p.Services) != 3 {
		t.Fatalf("cluster has %d services, want 3 nodes", len(p.Services))
	}
	arg := func(cmd []string, flag string) string {
		if i := slices.Index(cmd, flag); i >= 0 && i+1 < len(cmd) {
			return cmd[i+1]
		}
		return ""
	}
	servers, clusters := map[string]bool{}, map[string]bool{}
	for name, s := range p.Services {
		checkNATSNode(t, name, s)
		servers[arg(s.Command, "--server_name")] = true
		clusters[arg(s.Command, "--cluster_name")] = true
		routes := arg(s.Command, "--routes")
		for other := range p.Services {
			if has := strings.Contains(routes, "nats://"+other+":6222"); has == (other == name) {
				t.Errorf("%s: routes %q: a node routes to every other node and not to itself (%s)", name, routes, other)
			}
		}
		if len(s.Volumes) != 1 || s.Volumes[0].Target != "/data" {
			t.Errorf("%s: volumes %+v, want one for /data", name, s.Volumes)
		}
	}
	if len(servers) != 3 || servers[""] {
		t.Errorf("server names %v: want 3 distinct", servers)
	}
	if len(clusters) != 1 || clusters[""] {
		t.Errorf("cluster names %v: want one shared", clusters)
	}
}

func TestComposeHostPortsDistinct(t *testing.T) {
	for _, file := range []string{"compose.yaml", "nats-cluster.compose.yaml"} {
		p := load(t, file)
		seen := map[string]string{}
		for name, s := range p.AllServices() {
			for _, pc := range s.Ports {
				key := pc.HostIP + ":" + pc.Published
				if other, dup := seen[key]; dup {
					t.Errorf("%s: host port %s published by %s and %s", file, key, other, name)
				}
				seen[key] = name
				if pc.HostIP != "127.0.0.1" {
					t.Errorf("%s: %s publishes port %s on %q; publish on 127.0.0.1 only", file, name, pc.Published, pc.HostIP)
				}
			}
		}
	}
}

// The observability profile adds Prometheus and Grafana, provisioned from
// deploy/observability: Prometheus scrapes every iamflow process at its
// admin REST port and loads the alerting rules; Grafana reads the data
// source and the dashboard from the files mounted where its provisioning
// says.
func TestComposeObservabilityProfile(t *testing.T) {
	p := load(t, "compose.yaml", "observability")
	prom, ok := p.Services["prometheus"]
	if !ok {
		t.Fatal("no prometheus service in the observability profile")
	}
	graf, ok := p.Services["grafana"]
	if !ok {
		t.Fatal("no grafana service in the observability profile")
	}
	for name, s := range map[string]types.ServiceConfig{"prometheus": prom, "grafana": graf} {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s, which does not exist: %v", name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("service %s mounts %s writable", name, v.Source)
			}
		}
	}

	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, mountSource(prom, "/etc/prometheus/prometheus.yml"), &pc)
	if len(pc.RuleFiles) != 1 || mountSource(prom, pc.RuleFiles[0]) == "" ||
		filepath.Base(mountSource(prom, pc.RuleFiles[0])) != "alerts.yml" {
		t.Errorf("rule_files %v: want the mounted observability/alerts.yml", pc.RuleFiles)
	}
	scraped := map[string]string{} // service label -> target
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				scraped[st.Labels["service"]] = tg
			}
		}
	}
	for name, s := range iamflowServices(p) {
		if s.Command[0] != "serve" {
			continue
		}
		addr, _ := env(s, "IAMFLOW_ADMIN_HTTP_ADDR")
		_, port, _ := net.SplitHostPort(addr)
		if want := "pod:" + port; scraped[s.Command[1]] != want {
			t.Errorf("prometheus scrapes %s at %q, want %q (its admin.http_addr in the pod)", name, scraped[s.Command[1]], want)
		}
	}

	var ds struct {
		Datasources []struct{ URL string } `yaml:"datasources"`
	}
	provisioning := mountSource(graf, "/etc/grafana/provisioning")
	readYAML(t, filepath.Join(provisioning, "datasources", "prometheus.yaml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana's data source %+v: want http://prometheus:9090", ds.Datasources)
	}
	var dp struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(provisioning, "dashboards", "iamflow.yaml"), &dp)
	if len(dp.Providers) != 1 {
		t.Fatalf("dashboard providers %+v", dp.Providers)
	}
	dir := mountSource(graf, dp.Providers[0].Options.Path)
	if _, err := os.Stat(filepath.Join(dir, "iamflow.json")); dir == "" || err != nil {
		t.Errorf("grafana's dashboard path %s is not the mounted dashboards directory: %v", dp.Providers[0].Options.Path, err)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}
