package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/tlsfiles/tlstest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/cli with what the commands print")

// goldenEnv is the only environment the golden runs see, so that help
// (which shows defaults such as $USER) prints the same everywhere.
var goldenEnv = map[string]string{"USER": "tester", "IAMFLOW_LOGIN_CACHE": "/nonexistent/iamflow-test/login.json"}

// transcript runs the command line with vars as its whole environment and
// returns what a person would see: the command, the exit code, stdout and
// stderr, with each key of replace turned into its value.
func transcript(t *testing.T, args []string, vars map[string]string, replace map[string]string) string {
	t.Helper()
	vars0 := map[string]string{}
	for k, v := range goldenEnv {
		vars0[k] = v
	}
	for k, v := range vars {
		vars0[k] = v
	}
	var out, errOut bytes.Buffer
	code := runEnv(context.Background(), args, &env{stdout: &out, stderr: &errOut, getenv: func(k string) (string, bool) {
		v, ok := vars0[k]
		return v, ok
	}})
	s := fmt.Sprintf("$ iamflow %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	for k, v := range replace {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// checkGolden compares got with testdata/cli/<name>.golden (-update rewrites it).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "cli", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (-update rewrites it):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// exitCode reads the exit code back from a transcript.
func exitCode(transcript string) string {
	_, rest, _ := strings.Cut(transcript, "\nexit ")
	code, _, _ := strings.Cut(rest, "\n")
	return code
}

// TestEveryCommandAnswersHelp: every command and subcommand answers -h,
// -help, --help (anywhere among its arguments) and `iamflow help ...` with
// its usage on stdout and exit 0; the golden files are that usage.
func TestEveryCommandAnswersHelp(t *testing.T) {
	checkGolden(t, "help", transcript(t, []string{"--help"}, nil, nil))
	for _, args := range [][]string{{}, {"-h"}, {"help"}} {
		if got := transcript(t, args, nil, nil); exitCode(got) != "0" || !strings.Contains(got, "Commands:\n  serve") {
			t.Errorf("iamflow %v:\n%s", args, got)
		}
	}
	for _, c := range commands() {
		paths := [][]string{{c.name}}
		for _, s := range c.subcommands {
			paths = append(paths, []string{c.name, s.name})
		}
		for _, path := range paths {
			name := "help-" + strings.Join(path, "-")
			want := transcript(t, append(append([]string{}, path...), "--help"), nil, nil)
			if exitCode(want) != "0" || !strings.Contains(want, "--- stdout\nusage: iamflow "+strings.Join(path, " ")) ||
				!strings.HasSuffix(want, "--- stderr\n") {
				t.Errorf("%v --help: want usage on stdout, nothing on stderr, exit 0:\n%s", path, want)
			}
			checkGolden(t, name, want)
			body := func(s string) string { _, b, _ := strings.Cut(s, "\nexit "); return b }
			variants := [][]string{
				append(append([]string{}, path...), "-h"),
				append(append([]string{}, path...), "-help"),
				append([]string{"help"}, path...),
				append(append(append([]string{}, path...), "--json"), "--help"), // after other flags
			}
			if len(path) == 1 && len(c.subcommands) > 0 {
				variants = append(variants, []string{c.name, "help"})
			}
			for _, v := range variants {
				if got := transcript(t, v, nil, nil); body(got) != body(want) {
					t.Errorf("iamflow %s prints something else than --help:\n%s", strings.Join(v, " "), got)
				}
			}
		}
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// adminServer starts an admin server with no services on it, requiring
// token (none: dev mode).
func adminServer(t *testing.T, token string) string {
	t.Helper()
	cfg := admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Insecure: token == ""}
	var opts []admin.Option
	if token != "" {
		opts = append(opts, admin.WithToken(secret.NewValue(token)))
	}
	return startAdmin(t, cfg, opts...)
}

// tlsAdminServer starts an admin server with TLS and mutual TLS (clients of
// clientCA), requiring token.
func tlsAdminServer(t *testing.T, token string, serverCA, clientCA *tlstest.CA) string {
	t.Helper()
	cert := serverCA.Issue(t, "admin", "127.0.0.1")
	cfg := admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		TLS: admin.TLSConfig{CertFile: cert.CertFile, KeyFile: cert.KeyFile, ClientCAFile: clientCA.CAFile}}
	return startAdmin(t, cfg, admin.WithToken(secret.NewValue(token)))
}

// startAdmin starts an admin server with no services on it, shut down when
// the test ends, and returns its gRPC address.
func startAdmin(t *testing.T, cfg admin.Config, opts ...admin.Option) string {
	t.Helper()
	s, err := admin.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s.GRPCAddr().String()
}

// TestTLSMessages pins what the CLI says when TLS stands between it and
// the admin API: plain text to a TLS server, an untrusted certificate, a
// missing client certificate; and that with the right files it works.
func TestTLSMessages(t *testing.T) {
	const token = "golden-admin-token-0123456789"
	serverCA, clientCA, otherCA := tlstest.NewCA(t, "server"), tlstest.NewCA(t, "clients"), tlstest.NewCA(t, "other")
	addr := tlsAdminServer(t, token, serverCA, clientCA)
	operator := clientCA.Issue(t, "operator")
	replace := map[string]string{addr: "127.0.0.1:TLS"}
	withCA := map[string]string{"IAMFLOW_ADMIN_TOKEN": token, "IAMFLOW_ADMIN_CLIENT_CA_FILE": serverCA.CAFile}
	full := map[string]string{"IAMFLOW_ADMIN_TOKEN": token, "IAMFLOW_ADMIN_CLIENT_CA_FILE": serverCA.CAFile,
		"IAMFLOW_ADMIN_CLIENT_CERT_FILE": operator.CertFile, "IAMFLOW_ADMIN_CLIENT_KEY_FILE": operator.KeyFile}
	for _, tc := range []struct {
		name string
		vars map[string]string
	}{
		{"status-tls-plaintext", map[string]string{"IAMFLOW_ADMIN_TOKEN": token}},
		{"status-tls-untrusted", map[string]string{"IAMFLOW_ADMIN_TOKEN": token, "IAMFLOW_ADMIN_CLIENT_CA_FILE": otherCA.CAFile}},
		{"status-tls-no-client-certificate", withCA},
		{"status-tls-mutual", full},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, tc.name, transcript(t, []string{"status", "--addr", addr}, tc.vars, replace))
		})
	}
}

// TestMessagesAPersonCanActOn pins what the CLI says, and its exit code,
// when something is wrong: a usage mistake (2), nothing running at the
// address, no token or a wrong one, a service the process does not run (1).
func TestMessagesAPersonCanActOn(t *testing.T) {
	const token = "golden-admin-token-0123456789"
	nothing := freeAddr(t)
	secured := adminServer(t, token)
	open := adminServer(t, "")
	replace := map[string]string{nothing: "127.0.0.1:NOTHING", secured: "127.0.0.1:SECURED", open: "127.0.0.1:DEV"}
	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
	}{
		{"unknown-command", []string{"stauts"}, nil},
		{"serve-no-service", []string{"serve"}, nil},
		{"serve-unknown-flag", []string{"serve", "--bogus", "all"}, nil},
		{"config-no-subcommand", []string{"config"}, nil},
		{"config-unknown-subcommand", []string{"config", "chek"}, nil},
		{"grant-no-subcommand", []string{"grant"}, nil},
		{"grant-unknown-subcommand", []string{"grant", "remove"}, nil},
		{"grant-add-missing-flags", []string{"grant", "add", "--domain", "src"}, nil},
		{"emulate-no-emulator", []string{"emulate"}, nil},
		{"emulate-unknown-emulator", []string{"emulate", "ldap"}, nil},
		{"reconcile-no-link", []string{"reconcile"}, nil},
		{"help-unknown-subcommand", []string{"help", "grant", "remove"}, nil},
		{"status-nothing-running", []string{"status", "--addr", nothing}, nil},
		{"grant-list-nothing-running", []string{"grant", "list", "--addr", nothing}, nil},
		{"reconcile-nothing-running", []string{"reconcile", "dev", "--dry-run", "--addr", nothing}, nil},
		{"status-no-token", []string{"status", "--addr", secured}, nil},
		{"status-wrong-token", []string{"status", "--addr", secured}, map[string]string{"IAMFLOW_ADMIN_TOKEN": "not-the-token-at-all"}},
		{"status-with-token", []string{"status", "--addr", secured}, map[string]string{"IAMFLOW_ADMIN_TOKEN": token}},
		{"grant-without-expiry", []string{"grant", "list", "--addr", open}, nil},
		{"reconcile-without-replicator", []string{"reconcile", "dev", "--addr", open}, nil},
		{"config-check-secrets-not-set", []string{"config", "check", "--config", "testdata/cli/prod.yaml"}, nil},
		{"config-check-secrets-empty", []string{"config", "check", "--config", "testdata/cli/prod.yaml"},
			map[string]string{"GOLDEN_ADMIN_TOKEN": "", "GOLDEN_WEBHOOK_PASSWORD": ""}},
		{"config-check-secrets-weak", []string{"config", "check", "--config", "testdata/cli/prod.yaml"},
			map[string]string{"GOLDEN_ADMIN_TOKEN": "admin", "GOLDEN_WEBHOOK_PASSWORD": "aaaaaaaaaaaaaaaaaaaa"}},
		{"config-check-ok", []string{"config", "check", "--config", "testdata/cli/cluster.yaml"},
			map[string]string{"GOLDEN_ADMIN_TOKEN": "Zm9yIHRoZSBnb2xkZW4gdGVzdHMgb25seQ", "GOLDEN_WEBHOOK_PASSWORD": "correct horse battery staple"}},
		{"config-check-file-alone", []string{"config", "check", "--config", "testdata/cli/caps.yaml"}, nil},
		{"config-check-dev", []string{"config", "check", "--dev", "--config", "testdata/cli/caps.yaml"}, nil},
		{"serve-admin-off-loopback", []string{"serve", "all"}, map[string]string{"IAMFLOW_ADMIN_GRPC_ADDR": "0.0.0.0:19090",
			"IAMFLOW_ADMIN_TOKEN": "env:GOLDEN_ADMIN_TOKEN", "IAMFLOW_INGEST_PASSWORD": "env:GOLDEN_WEBHOOK_PASSWORD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, tc.name, transcript(t, tc.args, tc.vars, replace))
		})
	}
}

// TestReconcilePlanReadsAsEnglish pins how a plan is printed: names where a
// person needs them (members by userName), a reason on every line, and
// counts in the singular when there is one.
func TestReconcilePlanReadsAsEnglish(t *testing.T) {
	start := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	r := &iamflowv1.ReconcileReport{
		Link: "hub-to-spokes", Source: "hub", Target: "spoke-eu", DryRun: true,
		StartedAt: timestamppb.New(start), FinishedAt: timestamppb.New(start.Add(42 * time.Millisecond)),
		SourceUsers: 1, SourceGroups: 2, TargetUsers: 2, TargetGroups: 1, HeldDeletions: 1,
		Actions: map[string]int64{"create_user": 1, "create_group": 1, "add_member": 1, "remove_member": 1, "delete_user": 1},
		Planned: []*iamflowv1.PlannedAction{
			{Kind: "create_user", Entity: "user", Name: "jane.doe@example.com", SourceId: "s-jane",
				Changes: []*iamflowv1.AttributeChange{{Attribute: "displayName", After: "Jane Doe"}}},
			{Kind: "create_group", Entity: "group", Name: "Developers", SourceId: "s-dev"},
			{Kind: "add_member", Entity: "group", Name: "Developers", SourceId: "s-dev", MemberSourceId: "s-jane", MemberName: "jane.doe@example.com"},
			{Kind: "remove_member", Entity: "group", Name: "Ops", TargetId: "t-ops", MemberTargetId: "t-bob", Reason: "not a member in the source"},
			{Kind: "delete_user", Entity: "user", Name: "old@example.com", TargetId: "t-old", Reason: "deleted in the source", Held: true},
		},
	}
	var b bytes.Buffer
	printReport(&b, r)
	printReport(&b, &iamflowv1.ReconcileReport{Link: "hub-to-spokes", Source: "hub", Target: "spoke-us", DryRun: true,
		StartedAt: timestamppb.New(start), FinishedAt: timestamppb.New(start.Add(time.Millisecond)), SourceUsers: 2, SourceGroups: 1, TargetUsers: 2, TargetGroups: 1})
	checkGolden(t, "reconcile-plan", b.String())
}
