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
	"strings"
	"text/tabwriter"

	"github.com/iamflow/iamflow/internal/telemetry"
)

// command is one iamflow command.
type command struct {
	name    string
	usage   string // arguments after the name
	summary string // one line for the command list
	help    string // the rest of `iamflow help <name>`
	// subcommands, when the command has them: `iamflow grant add ...`.
	subcommands []subcommand
	run         func(ctx context.Context, env *env, args []string) error
}

// subcommand is one subcommand of a command, for help.
type subcommand struct {
	name    string
	usage   string // arguments after `iamflow <command> <name>`
	summary string
}

// env is what commands write to and read from.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	// showFlags makes a command's flag set print its flags on -h (help
	// does that); otherwise flag sets print nothing themselves.
	showFlags bool
}

// errUsage marks an error whose message is a usage hint (exit code 2).
var errUsage = errors.New("usage")

func commands() []command {
	return []command{
		serveCommand(), devCommand(), configCommand(), statusCommand(), grantCommand(), reconcileCommand(), emulateCommand(),
		loginCommand(), logoutCommand(), requestCommand(), requestsCommand(), approveCommand(), denyCommand(), cancelCommand(),
		versionCommand(),
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// Run runs the command line args and returns the process exit code:
// 0 success, 1 failure, 2 usage error. -h, -help and --help anywhere (and
// `help` as a command's first argument when it has subcommands) print the
// command's or subcommand's usage and exit 0.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, &env{stdout: stdout, stderr: stderr, getenv: os.LookupEnv})
}

// runEnv is Run with the environment given.
func runEnv(ctx context.Context, args []string, e *env) int {
	stdout, stderr := e.stdout, e.stderr
	if len(args) == 0 {
		printUsage(stdout)
		return 0
	}
	if isHelpFlag(args[0]) || args[0] == "help" {
		return helpFor(ctx, e, args[1:])
	}
	c, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "iamflow: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	rest := args[1:]
	if wantsHelp(c, rest) {
		path := []string{c.name}
		if len(c.subcommands) > 0 && len(rest) > 0 && hasSubcommand(c, rest[0]) {
			path = append(path, rest[0])
		}
		return helpFor(ctx, e, path)
	}
	err := c.run(ctx, e, rest)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		usage := c.usage
		if len(c.subcommands) > 0 && len(rest) > 0 && hasSubcommand(c, rest[0]) {
			sub, _ := findSubcommand(c, rest[0])
			usage = sub.name + " " + sub.usage
		}
		fmt.Fprintf(stderr, "iamflow %s: %s\nusage: iamflow %s %s\n", c.name, usageMessage(err), c.name, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "iamflow %s: %v\n", c.name, err)
		return 1
	}
}

// usageMessage is a usage error's text without the "usage: " marker.
func usageMessage(err error) string {
	return strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
}

func isHelpFlag(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// wantsHelp reports whether args (after the command's name) ask for help:
// a help flag before any "--", or `help` as the first argument of a
// command with subcommands.
func wantsHelp(c command, args []string) bool {
	if len(c.subcommands) > 0 && len(args) > 0 && args[0] == "help" {
		return true
	}
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelpFlag(a) {
			return true
		}
	}
	return false
}

func hasSubcommand(c command, name string) bool {
	_, ok := findSubcommand(c, name)
	return ok
}

func findSubcommand(c command, name string) (subcommand, bool) {
	for _, s := range c.subcommands {
		if s.name == name {
			return s, true
		}
	}
	return subcommand{}, false
}

// subcommandNames lists c's subcommands as "add, extend, revoke or list".
func subcommandNames(c command) string {
	names := make([]string, len(c.subcommands))
	for i, s := range c.subcommands {
		names[i] = s.name
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `iamflow keeps OCI IAM Identity Domains, and what depends on them, in step
with every identity change: OCI delivers audit events to the ingest webhook,
JetStream makes them durable, and services act on them.

Usage: iamflow <command> [flags] [arguments]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprint(w, `
Run 'iamflow <command> --help' (or 'iamflow help <command>') for its flags and details.
Start here: 'iamflow dev' runs everything locally with no configuration.
`)
}

// helpFor prints the help of the command (and subcommand) named by path to
// stdout and returns 0, or complains on stderr and returns 2.
func helpFor(ctx context.Context, e *env, path []string) int {
	if len(path) == 0 {
		printUsage(e.stdout)
		return 0
	}
	c, ok := lookup(path[0])
	if !ok {
		fmt.Fprintf(e.stderr, "iamflow help: unknown command %q\n\n", path[0])
		printUsage(e.stderr)
		return 2
	}
	he := *e
	he.showFlags = true
	switch {
	case len(path) > 1 && len(c.subcommands) > 0:
		sub, ok := findSubcommand(c, path[1])
		if !ok {
			fmt.Fprintf(e.stderr, "iamflow help %s: unknown subcommand %q: give %s\n", c.name, path[1], subcommandNames(c))
			return 2
		}
		fmt.Fprintf(e.stdout, "usage: iamflow %s %s %s\n\n%s\n", c.name, sub.name, sub.usage, sub.summary)
		_ = c.run(ctx, &he, []string{sub.name, "-h"})
	case len(path) > 1:
		fmt.Fprintf(e.stderr, "iamflow help %s: %s has no subcommands\n", c.name, c.name)
		return 2
	case len(c.subcommands) > 0:
		fmt.Fprintf(e.stdout, "usage: iamflow %s %s\n\n%s\n\nSubcommands:\n", c.name, c.usage, strings.TrimSpace(c.help))
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, s := range c.subcommands {
			fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.summary)
		}
		_ = tw.Flush()
		fmt.Fprintf(e.stdout, "\nRun 'iamflow %s <subcommand> --help' for its flags.\n", c.name)
	default:
		fmt.Fprintf(e.stdout, "usage: iamflow %s %s\n\n%s\n", c.name, c.usage, strings.TrimSpace(c.help))
		_ = c.run(ctx, &he, []string{"-h"})
	}
	return 0
}

// newFlags returns a flag set that reports errors as usage errors (through
// parse) and prints nothing itself, except its flags when help asks.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if e.showFlags {
		fs.SetOutput(e.stdout)
		fs.Usage = func() {
			n := 0
			fs.VisitAll(func(*flag.Flag) { n++ })
			if n > 0 {
				fmt.Fprintln(e.stdout, "\nFlags:")
				fs.PrintDefaults()
			}
		}
	}
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

// newCLILogger is the logger of commands that run no service (the
// emulators): the format a service's would have (text on a terminal, JSON
// elsewhere), so one process writes one format.
func newCLILogger(e *env) *slog.Logger {
	l, err := telemetry.NewLogger(telemetry.DefaultConfig(), e.stderr)
	if err != nil { // the default configuration is valid; this is a fallback only
		return slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(e.stderr, nil)))
	}
	return l
}
