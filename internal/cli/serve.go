package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/iamflow/iamflow/internal/app"
	"github.com/iamflow/iamflow/internal/app/config"
)

func serveCommand() command {
	return command{
		name: "serve", usage: "[--config FILE] <service...>|all",
		summary: "run one or more services (all: monolithic mode)",
		help: fmt.Sprintf(`Runs the named services in this process until SIGINT or SIGTERM.

  iamflow serve all                     every service, one process (monolithic mode)
  iamflow serve ingest                  one service per process (microservices mode)

Services in this build: %s.
With nats.urls empty an embedded JetStream server is started (monolithic
mode); with it set, every process joins that NATS cluster and replicas of a
service share its durable consumers. Settings come from --config and from
IAMFLOW_* environment variables (see 'iamflow config check --env').`, strings.Join(app.ServiceNames(), ", ")),
		run: func(ctx context.Context, e *env, args []string) error {
			fs := newFlags(e, "serve")
			cfgPath := configFlag(e, fs)
			if err := parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() == 0 {
				return fmt.Errorf("%w: name the services to run (%s) or all", errUsage, strings.Join(app.ServiceNames(), ", "))
			}
			cfg, err := config.Load(*cfgPath, e.getenv)
			if err != nil {
				return err
			}
			a, err := app.New(ctx, cfg, fs.Args(), app.WithVersion(Version()))
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
}
