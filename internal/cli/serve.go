package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/iamflow/iamflow/internal/app"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/memlimit"
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
			// The container's memory limit is the runtime's soft limit
			// (unless GOMEMLIMIT says otherwise): a full reconcile's peak
			// is then collected for instead of killed.
			set, container, memErr := memlimit.Apply(os.DirFS("/"), e.getenv)
			a, err := app.New(ctx, cfg, fs.Args(), app.WithVersion(Version()))
			if err != nil {
				return err
			}
			switch {
			case memErr != nil:
				a.Logger().Warn("container memory limit not read; the Go runtime has none (set GOMEMLIMIT)", "error", memErr)
			case set > 0:
				a.Logger().Info("Go memory limit set from the container's", "limit_bytes", set, "container_bytes", container)
			}
			return a.Run(ctx)
		},
	}
}
