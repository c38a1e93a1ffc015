package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/iamflow/iamflow/internal/app/config"
)

func configCommand() command {
	return command{
		name: "config", usage: "check [--config FILE] [--env] [--dev]",
		summary: "validate a configuration file",
		subcommands: []subcommand{{name: "check", usage: "[--config FILE] [--env] [--dev]",
			summary: "Loads the configuration and reports every problem at once, each naming its key and the fix."}},
		help: `'iamflow config check' loads the file and the IAMFLOW_* environment overrides,
and reports every problem at once, each naming its key and the fix. It exits
0 when the configuration is valid. --env lists the override variables.

Secret references are resolved as the process would resolve them: an env:
reference to a variable that is not set, or set but empty, and a file: that
cannot be read or is empty are reported, and so are an admin token or a
webhook password too weak to guard the API. vault: references are checked
for form only (reading them needs OCI).

--dev checks the file as 'iamflow dev' runs it: no admin token needed, a
generated webhook password, and, when the file names no domains, the
emulated domains src and tgt, the link, the temporary group and the
emulated database dev adds.`,
		run: func(ctx context.Context, e *env, args []string) error {
			switch {
			case len(args) == 0:
				return fmt.Errorf("%w: give a subcommand: check", errUsage)
			case args[0] != "check":
				return fmt.Errorf("%w: unknown config subcommand %q: the only one is check", errUsage, args[0])
			}
			fs := newFlags(e, "config check")
			cfgPath := configFlag(e, fs)
			listEnv := fs.Bool("env", false, "list the environment variables that override settings, and exit")
			dev := fs.Bool("dev", false, "check the configuration as 'iamflow dev' runs it")
			if err := parse(fs, args[1:]); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return fmt.Errorf("%w: unexpected argument %q (the file is given with --config)", errUsage, fs.Arg(0))
			}
			if *listEnv {
				for _, n := range config.EnvNames() {
					fmt.Fprintln(e.stdout, n)
				}
				return nil
			}
			cfg, err := config.Load(*cfgPath, e.getenv)
			if err != nil {
				return err
			}
			how := ""
			if *dev {
				how = ", as iamflow dev runs it"
				cfg.Dev = true
				tmp, err := os.MkdirTemp("", "iamflow-config-check-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				anywhere := devAddrs{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"}
				stack, err := startDevStack(&cfg, tmp, anywhere, "http://127.0.0.1:8080/v1/events", cfg.Ingest.Username, "unused", slog.New(slog.DiscardHandler))
				if err != nil {
					return err
				}
				defer stack.close()
			}
			if err := errors.Join(cfg.Validate(), cfg.CheckSecrets(ctx, e.getenv)); err != nil {
				return fmt.Errorf("configuration is not valid%s:\n%w", how, err)
			}
			src := *cfgPath
			if src == "" {
				src = "built-in defaults"
			}
			mode := "monolithic (embedded JetStream)"
			if len(cfg.NATS.URLs) > 0 {
				mode = "NATS cluster " + redactedURLs(cfg.NATS.URLs)
			}
			fmt.Fprintf(e.stdout, "configuration ok (%s%s): %s, %s, webhook %s%s\n",
				src, how, mode, plural(len(cfg.Domains), "identity domain"), cfg.Ingest.Listen, cfg.Ingest.Path)
			return nil
		},
	}
}

// plural is "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// redactedURLs joins urls with any password replaced by "xxxxx", for output.
func redactedURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, raw := range urls {
		if u, err := url.Parse(raw); err == nil {
			out[i] = u.Redacted()
		} else {
			out[i] = "(not a URL)"
		}
	}
	return strings.Join(out, ",")
}
