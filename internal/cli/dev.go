package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/app"
	"github.com/iamflow/iamflow/internal/config"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/services/ingest"
)

func devCommand() command {
	return command{
		name: "dev", usage: "[--config FILE] [--data DIR]",
		summary: "run everything locally with an embedded JetStream, no configuration needed",
		help: `Starts an embedded JetStream and every service in one process with a working
default configuration, then prints the webhook URL, the admin addresses, and a
curl line that posts a sample OCI event.

Dev mode differs from 'serve all' in three ways: the admin API needs no token
(it still listens on loopback only), the webhook password is generated and
printed, and JetStream state lives in a temporary directory removed on exit
unless --data is given. Without configured domains, one domain named
"default" stands for OCI's Default domain.`,
		run: func(ctx context.Context, e *env, args []string) error {
			fs := newFlags(e, "dev")
			cfgPath := configFlag(e, fs)
			dataDir := fs.String("data", "", "keep JetStream state in this directory (default: a temporary one, removed on exit)")
			if err := parse(fs, args); err != nil {
				return err
			}
			cfg, err := config.Load(*cfgPath, e.getenv)
			if err != nil {
				return err
			}
			cfg.Dev = true
			if len(cfg.NATS.URLs) == 0 {
				dir := *dataDir
				if dir == "" {
					if dir, err = os.MkdirTemp("", "iamflow-dev-"); err != nil {
						return err
					}
					defer os.RemoveAll(dir)
				}
				cfg.NATS.Embedded.StoreDir = dir
			}
			if len(cfg.Domains) == 0 {
				cfg.Domains = []config.Domain{{Name: "default", OCIName: "Default"}}
			}
			var opts []app.Option
			password := "(from ingest.password)"
			if cfg.Ingest.Password.IsZero() {
				password = randomHex(12)
				opts = append(opts, app.WithWebhookPassword(secret.NewValue(password)))
			}
			a, err := app.New(ctx, cfg, []string{"all"}, append(opts, app.WithVersion(Version()))...)
			if err != nil {
				return err
			}
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			ing, _ := a.Service(ingest.Name).(*ingest.Service)
			if err := waitListening(ctx, done, ing); err != nil {
				return err
			}
			printDevBanner(e.stdout, cfg, a, ing.Addr().String(), password)
			return <-done
		},
	}
}

// waitListening waits until ingest has bound its address, or Run failed.
func waitListening(ctx context.Context, done <-chan error, ing *ingest.Service) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for ing.Addr() == nil {
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("stopped before it was ready")
			}
			return err
		case <-ctx.Done():
			return <-done
		case <-tick.C:
		}
	}
	return nil
}

func printDevBanner(w io.Writer, cfg config.Config, a *app.App, ingestAddr, password string) {
	webhook := "http://" + ingestAddr + cfg.Ingest.Path
	grpcAddr, httpAddr := a.Admin().GRPCAddr().String(), a.Admin().HTTPAddr().String()
	nats := a.Bus().ClientURL()
	if nats == "" {
		nats = strings.Join(cfg.NATS.URLs, ",")
	}
	domains := make([]string, 0, len(cfg.Domains))
	for _, d := range cfg.Domains {
		domains = append(domains, fmt.Sprintf("%s (OCI name %q)", d.Name, d.OCIName))
	}
	fmt.Fprintf(w, `
iamflow dev is running; Ctrl-C stops it.

  webhook  %s   Basic auth user %q password %q
  admin    gRPC %s   REST http://%s/v1/status   (no token in dev mode)
  metrics  http://%s/metrics
  nats     %s   (store %s)
  domains  %s
  services %s

Post a sample OCI event (the second post of the same event is stored once):

  curl -sS -u '%s:%s' -H 'Content-Type: application/json' %s -d '%s'

Then look at the counters:

  go run ./cmd/iamflow status --addr %s      or      curl -sS http://%s/v1/status

`, webhook, cfg.Ingest.Username, password, grpcAddr, httpAddr, httpAddr, nats, cfg.NATS.Embedded.StoreDir,
		strings.Join(domains, ", "), strings.Join(app.ServiceNames(), ", "),
		cfg.Ingest.Username, password, webhook, sampleEvent(cfg.Domains[0].OCIName), grpcAddr, httpAddr)
}

// sampleEvent is an OCI Events envelope for a user created in the named domain.
func sampleEvent(domain string) string {
	if domain == "" {
		domain = "Default"
	}
	return fmt.Sprintf(`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","cloudEventsVersion":"0.1",`+
		`"eventTypeVersion":"2.0","source":"IdentityControlPlane","eventID":"%s","eventTime":"%s",`+
		`"contentType":"application/json","data":{"resourceName":"jane.doe@example.com","additionalDetails":{`+
		`"adminResourceId":"%s","adminResourceName":"jane.doe@example.com","adminResourceType":"User",`+
		`"actorName":"admin@example.com","actorType":"User","domainName":"%s","eventId":"admin.user.create.success"}}}`,
		uuid(), time.Now().UTC().Format(time.RFC3339), randomHex(16), domain)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}
