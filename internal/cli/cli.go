// Package cli implements the iamflow command line: one binary whose
// subcommands run services, the dev stack, and the operator tools.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"google.golang.org/grpc"

	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/config"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/telemetry"
)

// command is one subcommand.
type command struct {
	name    string
	usage   string // arguments after the name
	summary string // one line for the command list
	help    string // the rest of `iamflow help <name>`
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what commands write to and read from.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
}

// errUsage marks an error whose message is a usage hint (exit code 2).
var errUsage = errors.New("usage")

func commands() []command {
	return []command{
		serveCommand(), devCommand(), configCommand(), statusCommand(), grantCommand(), reconcileCommand(), emulateCommand(),
		versionCommand(),
	}
}

// Run runs the command line args and returns the process exit code:
// 0 success, 1 failure, 2 usage error.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: os.LookupEnv}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			return helpFor(e, args[1])
		}
		printUsage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "iamflow %s: %v\nusage: iamflow %s %s\n", c.name, err, c.name, c.usage)
			return 2
		default:
			fmt.Fprintf(stderr, "iamflow %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "iamflow: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `iamflow keeps OCI IAM Identity Domains, and what depends on them, in step
with every identity change: OCI delivers audit events to the ingest webhook,
JetStream makes them durable, and services act on them.

Usage: iamflow <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'iamflow help <command>' for a command's flags and details.
Start here: 'iamflow dev' runs everything locally with no configuration.
`)
}

func helpFor(e *env, name string) int {
	for _, c := range commands() {
		if c.name == name {
			fmt.Fprintf(e.stdout, "usage: iamflow %s %s\n\n%s\n", c.name, c.usage, strings.TrimSpace(c.help))
			_ = c.run(context.Background(), e, []string{"-h"})
			return 0
		}
	}
	fmt.Fprintf(e.stderr, "iamflow help: unknown command %q\n", name)
	return 2
}

// newFlags returns a flag set that prints its defaults on -h and reports errors as usage errors.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stdout)
	return fs
}

// parse parses args and turns flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// configFlag adds --config, defaulting to $IAMFLOW_CONFIG.
func configFlag(e *env, fs *flag.FlagSet) *string {
	def, _ := e.getenv("IAMFLOW_CONFIG")
	return fs.String("config", def, "configuration file (YAML); default $IAMFLOW_CONFIG; none means built-in defaults")
}

// Version is the module version and VCS revision this binary was built from.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += "+" + rev
		if settings["vcs.modified"] == "true" {
			v += "-dirty"
		}
	}
	return v
}

func versionCommand() command {
	return command{
		name: "version", summary: "print the version",
		help: "Prints the version and the Go toolchain that built it.",
		run: func(_ context.Context, e *env, args []string) error {
			fs := newFlags(e, "version")
			if err := parse(fs, args); err != nil {
				return err
			}
			bi, _ := debug.ReadBuildInfo()
			goVersion := "unknown"
			if bi != nil {
				goVersion = bi.GoVersion
			}
			fmt.Fprintf(e.stdout, "iamflow %s (%s)\n", Version(), goVersion)
			return nil
		},
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// newCLILogger logs text lines to stderr, for commands that are not services.
func newCLILogger(e *env) *slog.Logger {
	return slog.New(telemetry.NewLogHandler(slog.NewTextHandler(e.stderr, nil)))
}

// dialAdmin connects to a running iamflow's admin API: at addr, else
// admin.grpc_addr from the configuration; with admin.token, else
// $IAMFLOW_ADMIN_TOKEN when set (dev mode needs no token).
func dialAdmin(ctx context.Context, e *env, cfgPath, addr string) (*grpc.ClientConn, error) {
	cfg, err := config.Load(cfgPath, e.getenv)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = cfg.Admin.GRPCAddr
	}
	ref := cfg.Admin.Token
	if ref.IsZero() {
		if _, ok := e.getenv("IAMFLOW_ADMIN_TOKEN"); ok {
			ref = "env:IAMFLOW_ADMIN_TOKEN"
		}
	}
	var token secret.Value
	if !ref.IsZero() {
		if token, err = secret.Resolve(ctx, ref); err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
	}
	conn, err := admin.Dial(ctx, addr, token)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return conn, nil
}
