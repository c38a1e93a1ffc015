package cli

import (
	"context"
	"fmt"

	"github.com/iamflow/iamflow/internal/config"
)

func configCommand() command {
	return command{
		name: "config", usage: "check [--config FILE] [--env]",
		summary: "validate a configuration file",
		help: `'iamflow config check' loads the file and the IAMFLOW_* environment overrides,
and reports every problem at once, each naming its key and the fix. It exits
0 when the configuration is valid. --env lists the override variables.
Secret references are checked for form, not resolved.`,
		run: func(_ context.Context, e *env, args []string) error {
			if len(args) == 0 || args[0] != "check" {
				if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
					args = []string{"check", "-h"}
				} else {
					return fmt.Errorf("%w: the only config subcommand is check", errUsage)
				}
			}
			fs := newFlags(e, "config check")
			cfgPath := configFlag(e, fs)
			listEnv := fs.Bool("env", false, "list the environment variables that override settings, and exit")
			if err := parse(fs, args[1:]); err != nil {
				return err
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
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("configuration is not valid:\n%w", err)
			}
			src := *cfgPath
			if src == "" {
				src = "built-in defaults"
			}
			mode := "monolithic (embedded JetStream)"
			if len(cfg.NATS.URLs) > 0 {
				mode = fmt.Sprintf("NATS cluster %v", cfg.NATS.URLs)
			}
			fmt.Fprintf(e.stdout, "configuration ok (%s): %s, %d identity domain(s), webhook %s%s\n",
				src, mode, len(cfg.Domains), cfg.Ingest.Listen, cfg.Ingest.Path)
			return nil
		},
	}
}
