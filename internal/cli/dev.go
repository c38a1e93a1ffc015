package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/app"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/services/expiry"
	"github.com/iamflow/iamflow/services/ingest"
)

func devCommand() command {
	return command{
		name: "dev", usage: "[--config FILE] [--data DIR]",
		summary: "run everything locally with an embedded JetStream, no configuration needed",
		help: `Starts an embedded JetStream and every service in one process with a working
default configuration, prints the webhook URL, the admin addresses and
commands to try, then one line for every change that flows through iamflow
(an event received, a user replicated, a database account created, a dead
letter).

Dev mode differs from 'serve all' in three ways: the admin API needs no token
(it still listens on loopback only), the webhook password is generated and
printed, and JetStream state lives in a temporary directory removed on exit
unless --data is given.

Without configured domains, dev also runs two emulated Identity Domains, "src"
and "tgt" (see 'iamflow help emulate'); every change made in src is delivered
to the webhook as the OCI event a real domain would emit, and the replicator
copies src into tgt. src holds the user jane.doe@example.com and the group
OCI-Temp-Admins, which the expiry service manages as a temporary group
('iamflow grant'). People log in with src ('iamflow login', see the banner): it
holds a requester, an approver and an on-call user with printed passwords, and
an access policy lets them ask for OCI-Temp-Admins ('iamflow request'), the
approver decide, and the on-call user be approved at once; the notifications
go to an emulated OCI Notifications topic.
Without configured databases either, it runs an emulated ORDS with
one database, "devdb": the DB provisioner gives every member of the group
"DB Users" in src an account there with the role APP_READER. And it serves a
pushed source, "idp": a SCIM 2.0 endpoint on the webhook's listener where
anything that speaks SCIM plays Okta or Entra ID (the banner prints its URL,
token and a curl line); the replicator copies it into tgt too.

'iamflow config check --dev --config FILE' checks a file as dev runs it.
`,
		run: runDev,
	}
}

func runDev(ctx context.Context, e *env, args []string) (err error) {
	fs := newFlags(e, "dev")
	cfgPath := configFlag(e, fs)
	dataDir := fs.String("data", "", "keep JetStream state in this directory (default: a temporary one, removed on exit)")
	sourceAddr := fs.String("source-addr", "127.0.0.1:9101", "address of the emulated source domain (when no domains are configured)")
	targetAddr := fs.String("target-addr", "127.0.0.1:9102", "address of the emulated target domain (when no domains are configured)")
	ordsAddr := fs.String("ords-addr", "127.0.0.1:9103", "address of the emulated ORDS (when no domains and no databases are configured)")
	notifyAddr := fs.String("notifications-addr", "127.0.0.1:9104", "address of the emulated OCI Notifications (when no domains and no access policy are configured)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, e.getenv)
	if err != nil {
		return err
	}
	cfg.Dev = true
	started := time.Now()
	tmp, err := os.MkdirTemp("", "iamflow-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if len(cfg.NATS.URLs) == 0 {
		cfg.NATS.Embedded.StoreDir = tmp
		if *dataDir != "" {
			cfg.NATS.Embedded.StoreDir = *dataDir
		}
	}
	tel, err := devTelemetry(ctx, e, cfg.Telemetry)
	if err != nil {
		return err
	}
	handedOver := false // once the app has the telemetry, it shuts it down
	defer func() {
		if !handedOver {
			_ = tel.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	password := secret.NewValue(randomHex(12))
	opts := []app.Option{app.WithVersion(Version()), app.WithTelemetry(tel)}
	if cfg.Ingest.Password.IsZero() {
		opts = append(opts, app.WithWebhookPassword(password))
	} else if password, err = secret.ResolveWith(ctx, cfg.Ingest.Password, e.getenv); err != nil {
		return fmt.Errorf("ingest.password: %w", err)
	}
	// Bind the webhook first: the emulated source domain needs its URL.
	ln, err := net.Listen("tcp", cfg.Ingest.Listen)
	if err != nil {
		return fmt.Errorf("ingest listen on %s: %w (set IAMFLOW_INGEST_LISTEN)", cfg.Ingest.Listen, err)
	}
	defer func() {
		if err != nil && !handedOver {
			ln.Close()
		}
	}()
	opts = append(opts, app.WithIngestListener(ln))
	webhook := "http://" + ln.Addr().String() + cfg.Ingest.Path
	stack, err := startDevStack(&cfg, tmp, devAddrs{*sourceAddr, *targetAddr, *ordsAddr, *notifyAddr}, webhook, cfg.Ingest.Username, password.Reveal(), tel.Logger)
	if err != nil {
		return err
	}
	defer stack.close()
	if stack.domains != nil {
		if stack.push, err = addDevPush(&cfg, tmp, ln.Addr().String()); err != nil {
			return err
		}
	}
	a, err := app.New(ctx, cfg, []string{"all"}, opts...)
	if err != nil {
		return err
	}
	handedOver = true
	return runDevApp(ctx, e, a, cfg, stack, devBanner{webhook: webhook, password: password.Reveal(), started: started, log: tel.Logger})
}

// devTelemetry sets up one logger for the emulators and iamflow, so the
// process writes one format, named iamflow-dev unless configured.
func devTelemetry(ctx context.Context, e *env, tcfg telemetry.Config) (*telemetry.Telemetry, error) {
	if tcfg.ServiceName == "" || tcfg.ServiceName == telemetry.DefaultConfig().ServiceName {
		tcfg.ServiceName = "iamflow-dev"
	}
	return telemetry.Setup(ctx, tcfg, telemetry.WithLogWriter(e.stderr))
}

// devBanner is what runDevApp prints and watches with.
type devBanner struct {
	webhook, password string
	started           time.Time
	log               *slog.Logger
}

// runDevApp runs the app until ctx ends: once ingest listens, the dev
// link's first full reconcile, the banner, then every change as it flows.
func runDevApp(ctx context.Context, e *env, a *app.App, cfg config.Config, stack *devStack, b devBanner) error {
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	ing, _ := a.Service(ingest.Name).(*ingest.Service)
	if err := waitListening(ctx, done, ing); err != nil {
		return err
	}
	if stack.domains != nil {
		// What was seeded into src reaches tgt now, not at the first
		// scheduled full reconcile.
		initialReconcile(ctx, a, b.log)
	}
	printDevBanner(e.stdout, cfg, a, b.webhook, b.password, stack)
	stack.notify.printTo(e.stdout)
	flowCtx, stopFlow := context.WithCancel(ctx)
	flowDone := watchFlow(flowCtx, a.Bus().JetStream(), b.started, e.stdout, b.log)
	err := <-done
	stopFlow()
	<-flowDone
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "iamflow dev stopped.")
	return nil
}

// initialReconcile runs a full reconcile of the dev link through the admin
// API, as a person would with 'iamflow reconcile dev'.
func initialReconcile(ctx context.Context, a *app.App, log *slog.Logger) {
	conn, err := admin.Dial(ctx, a.Admin().GRPCAddr().String(), secret.Value{})
	if err == nil {
		defer conn.Close()
		_, err = iamflowv1.NewReplicatorServiceClient(conn).Reconcile(ctx, &iamflowv1.ReconcileRequest{Link: devLink})
	}
	if err != nil {
		log.Warn("dev: the first full reconcile of src -> tgt failed; the scheduled one will repair it", "link", devLink, "error", err)
	}
}

// devLink is the replication link dev mode adds between its emulated domains.
const devLink = "dev"

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

func printDevBanner(w io.Writer, cfg config.Config, a *app.App, webhook, password string, stack *devStack) {
	grpcAddr, httpAddr := a.Admin().GRPCAddr().String(), a.Admin().HTTPAddr().String()
	nats := a.Bus().ClientURL()
	if len(cfg.NATS.URLs) > 0 {
		nats = redactedURLs(cfg.NATS.URLs)
	}
	domains := make([]string, 0, len(cfg.Domains))
	for _, d := range cfg.Domains {
		domains = append(domains, fmt.Sprintf("%s (OCI name %q)", d.Name, d.OCIName))
	}
	fmt.Fprintf(w, `
iamflow dev is running; Ctrl-C stops it.

  webhook  %s   Basic auth user %q password %q
  admin    gRPC %s   REST http://%s/v1/status   (no token in dev mode)
  console  http://%s/   (the web console: services, replication, grants, dead letters, databases)
  metrics  http://%s/metrics
  nats     %s   (store %s)
  domains  %s
  services %s
`, webhook, cfg.Ingest.Username, password, grpcAddr, httpAddr, httpAddr, httpAddr, nats, cfg.NATS.Embedded.StoreDir,
		strings.Join(domains, ", "), strings.Join(a.Services(), ", "))
	if stack.domains != nil {
		printDevEmulated(w, cfg, a, webhook, password, stack)
	}
	fmt.Fprintf(w, `
Then look at the counters and at what could not be done (nothing, if all went well):

  go run ./cmd/iamflow status --addr %s      or      curl -sS http://%s/v1/status

Every change that flows through iamflow is printed below, one line each.

`, grpcAddr, httpAddr)
}

// printDevEmulated is the banner's part on the emulated domains (and ORDS):
// where they are, what to change, how to log in, grant and post an event.
func printDevEmulated(w io.Writer, cfg config.Config, a *app.App, webhook, password string, stack *devStack) {
	grpcAddr := a.Admin().GRPCAddr().String()
	emu := stack.domains
	src, tgt := emu.running[0].URL(), emu.running[1].URL()
	fmt.Fprintf(w, `
  emulated Identity Domains (your OAuth client: id %q secret %q):
    src  %s   its changes are sent to the webhook as OCI events; holds user %s and group %s
    tgt  %s   the replicator copies src into it (link %q)

Change something in the source domain; its event reaches the webhook within a second:

  TOKEN=$(curl -sS -u '%s:%s' -d 'grant_type=client_credentials&scope=urn:opc:idm:__myscopes__' %s/oauth2/v1/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/scim+json' %s/admin/v1/Groups -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Developers"}'

and watch it appear in tgt; a full reconcile of the link, as a plan first:

  go run ./cmd/iamflow reconcile %s --dry-run --addr %s
`, emu.adminID, emu.adminSecret, src, devUser, devTempGroup, tgt, devLink, emu.adminID, emu.adminSecret, src, src, devLink, grpcAddr)
	if stack.db != nil {
		printDevORDS(w, a.Admin().HTTPAddr().String(), src, stack.db)
	}
	fmt.Fprintf(w, `
Log in as a person of src (the login domain in dev; the login page opens in a browser):

`)
	for _, p := range emu.people {
		fmt.Fprintf(w, "  %-28s password %s   %s\n", p.userName, p.password, p.role)
	}
	fmt.Fprintf(w, `
  go run ./cmd/iamflow login --domain-url %s --client-id %s
  go run ./cmd/iamflow status --addr %s     (now as that person; 'iamflow logout' forgets the login)
`, src, devLoginClient, grpcAddr)
	if slices.Contains(a.Services(), expiry.Name) {
		fmt.Fprintf(w, `
Give %s a temporary membership of %s; the expiry service removes it at the deadline:

  go run ./cmd/iamflow grant add --addr %s --domain src --group %s --user %s --for 2m --reason "trying iamflow"
  go run ./cmd/iamflow grant list --addr %s
`, devUser, devTempGroup, grpcAddr, devTempGroup, devUser, grpcAddr)
		stack.notify.banner(w, src, grpcAddr)
	}
	stack.push.banner(w)
	fmt.Fprintf(w, `
Or post a sample OCI event yourself, as OCI Notifications would (%s created in src);
the second post of the same event is stored once:

  curl -sS -u '%s:%s' -H 'Content-Type: application/json' %s -d '%s'
`, devUser, cfg.Ingest.Username, password, webhook, sampleEvent(cfg.Domains[0].OCIName, emu.userID(devUser), devUser))
}

// printDevORDS is the banner's part on the emulated ORDS: what membership
// of the mapped group does in the database, and how to see it.
func printDevORDS(w io.Writer, httpAddr, src string, db *devDatabase) {
	fmt.Fprintf(w, `
  emulated ORDS (Autonomous Database REST-enabled SQL):
    %s  %s   members of src group %q get an account with role %s

Add a user to %q in src (with $TOKEN from above); the user appears in %s with
the role within a second:

  USER_ID=$(curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/scim+json' %s/admin/v1/Users -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dana@example.com"}' | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
  curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/scim+json' %s/admin/v1/Groups -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"%s","members":[{"value":"'$USER_ID'","type":"User"}]}'
  curl -sS '%s/_emulator/users?db=%s'

and what the DB provisioner would run for a user (nothing, once it is in step):

  curl -sS http://%s/v1/dbprovisioner/databases/%s/users/dana@example.com
`, devDB, db.emu.BaseURL(devDB), devDBGroup, devDBRole, devDBGroup, devDB, src, src, devDBGroup, db.emu.URL(), devDB, httpAddr, devDB)
}

// sampleEvent is an OCI Events envelope for the user userName (SCIM id
// userID) created in the named domain.
func sampleEvent(domain, userID, userName string) string {
	return fmt.Sprintf(`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","cloudEventsVersion":"0.1",`+
		`"eventTypeVersion":"2.0","source":"IdentityControlPlane","eventID":"%s","eventTime":"%s",`+
		`"contentType":"application/json","data":{"resourceName":"%s","additionalDetails":{`+
		`"adminResourceId":"%s","adminResourceName":"%s","adminResourceType":"User",`+
		`"actorName":"admin@example.com","actorType":"User","domainName":"%s","eventId":"admin.user.create.success"}}}`,
		uuid(), time.Now().UTC().Format(time.RFC3339), userName, userID, userName, domain)
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
