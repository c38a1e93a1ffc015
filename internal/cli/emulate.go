package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/secret"
)

func emulateCommand() command {
	return command{
		name: "emulate", usage: "identity-domain|ords [flags] NAME...",
		summary: "run emulated OCI Identity Domains or ORDS (REST-enabled SQL) for tests and demos",
		subcommands: []subcommand{
			{name: "identity-domain", usage: "[flags] NAME...", summary: "Runs one emulated Identity Domain per name, on consecutive ports from --addr."},
			{name: "ords", usage: "[flags] ALIAS...", summary: "Runs one emulated ORDS serving a REST-enabled schema per alias."},
		},
		help: `'iamflow emulate identity-domain src tgt' runs one in-memory Identity Domain per
name, on consecutive ports from --addr, until SIGINT. Each speaks the Identity
Domains REST API the way iamflow and the oci-go-sdk use it: /oauth2/v1/token
(client credentials), /admin/v1/Users, /Groups, /UserCapabilitiesChanger, SCIM
filters and paging, ETags, rate limits per --tier. With --webhook, every change
is also sent as the OCI Events payload a real domain produces, so it flows
through ingest like a real one. Faults (latency, 429/5xx rates, outage,
dropped or duplicated events) are set at runtime:

  curl -X POST http://127.0.0.1:9101/_emulator/faults -d '{"rate429":0.2}'
  curl http://127.0.0.1:9101/_emulator/stats

'iamflow emulate ords db1 db2' runs one emulated ORDS on --addr serving a
REST-enabled schema per name (alias): <url>/ords/<alias>/oauth/token and
<url>/ords/<alias>/_/sql over an in-memory catalog of users and roles, the
statements and catalog queries the DB provisioner issues. See what it holds:

  curl 'http://127.0.0.1:9103/_emulator/users?db=db1'

The OAuth client secret is generated and printed unless --client-secret
gives a reference (env:NAME or file:/path). 'iamflow emulate ords -h' lists
its flags.`,
		run: func(ctx context.Context, e *env, args []string) error {
			switch {
			case len(args) == 0:
				return fmt.Errorf("%w: give an emulator: identity-domain or ords", errUsage)
			case args[0] == "ords":
				return runEmulateORDS(ctx, e, args[1:])
			case args[0] != "identity-domain":
				return fmt.Errorf("%w: unknown emulator %q: the emulators are identity-domain and ords", errUsage, args[0])
			}
			return runEmulateIdentityDomain(ctx, e, args[1:])
		},
	}
}

// runEmulateIdentityDomain runs 'iamflow emulate identity-domain': one
// emulated domain per name, on consecutive ports, seeded or generated as
// the flags say, until ctx ends.
func runEmulateIdentityDomain(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "emulate identity-domain")
	addr := fs.String("addr", "127.0.0.1:9101", "address of the first domain; the next ones take the following ports")
	clientID := fs.String("client-id", "iamflow", "OAuth client id accepted by every domain")
	clientSecret := fs.String("client-secret", "", "secret reference for the client secret (default: generated and printed)")
	adminID := fs.String("admin-client-id", "admin", "a second OAuth client, with the same secret, for changes made by hand (\"\" for none)")
	tier := fs.String("tier", string(identitydomain.TierFree), "rate limits: free, oracle_apps, oracle_apps_premium, premium, external_user, unlimited")
	webhook := fs.String("webhook", "", "URL that receives every change as an OCI Events payload (e.g. http://127.0.0.1:8080/v1/events)")
	webhookUser := fs.String("webhook-user", "iamflow", "Basic auth user for --webhook")
	webhookPassword := fs.String("webhook-password", "", "secret reference for the --webhook Basic auth password")
	seedFile := fs.String("seed", "", "YAML or JSON file of users, groups and memberships to load into every domain")
	generate := fs.String("generate", "", "generate a directory: USERS,GROUPS,MEMBERSHIPS (e.g. 50000,5000,200000)")
	if err := parse(fs, args); err != nil {
		return err
	}
	names := fs.Args()
	if len(names) == 0 {
		return fmt.Errorf("%w: name at least one domain (e.g. src)", errUsage)
	}
	host, portText, err := net.SplitHostPort(*addr)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		return fmt.Errorf("%w: --addr %q is not host:port", errUsage, *addr)
	}
	secretText, shown, err := emulatorSecret(ctx, *clientSecret)
	if err != nil {
		return err
	}
	hook := identitydomain.EventsWebhook{URL: *webhook, Username: *webhookUser}
	if *webhookPassword != "" {
		v, err := secret.Resolve(ctx, secret.Ref(*webhookPassword))
		if err != nil {
			return fmt.Errorf("--webhook-password: %w", err)
		}
		hook.Password = v.Reveal()
	}
	var gen *identitydomain.GenerateConfig
	if *generate != "" {
		if gen, err = parseGenerate(*generate); err != nil {
			return fmt.Errorf("%w: --generate: %v", errUsage, err)
		}
	}
	var domains []*identitydomain.Domain
	defer func() {
		for _, d := range domains {
			_ = d.Close()
		}
	}()
	for i, name := range names {
		d, err := identitydomain.New(identitydomain.Config{
			Name:          name,
			Clients:       clients(*clientID, *adminID, secretText),
			Tier:          identitydomain.Tier(*tier),
			EventsWebhook: hook,
		}, identitydomain.WithLogger(newCLILogger(e).With("domain", name)))
		if err != nil {
			return fmt.Errorf("domain %s: %w", name, err)
		}
		domains = append(domains, d)
		listen := net.JoinHostPort(host, strconv.Itoa(port+i))
		if port == 0 {
			listen = net.JoinHostPort(host, "0")
		}
		if err := fillAndStart(d, *seedFile, gen, listen); err != nil {
			return fmt.Errorf("domain %s: %w", name, err)
		}
		fmt.Fprintf(e.stdout, "identity domain %-8s %s   (domainId %s, %d users, %d groups)\n",
			name, d.URL(), d.Config().DomainID, len(d.Users()), len(d.Groups()))
	}
	fmt.Fprintf(e.stdout, "OAuth client: id %q secret %q; Ctrl-C stops.\n", *clientID, shown)
	if *adminID != "" && *adminID != *clientID {
		fmt.Fprintf(e.stdout, "Administrator client: id %q, same secret (for changes by hand, as a person at the console).\n", *adminID)
	}
	<-ctx.Done()
	return nil
}

// emulatorSecret is the emulated OAuth client's secret: the --client-secret
// reference resolved, else one generated here. shown is what the banner
// prints of it: a generated secret, never one from the reference.
func emulatorSecret(ctx context.Context, ref string) (text, shown string, err error) {
	if ref == "" {
		text = randomHex(16)
		return text, text, nil
	}
	v, err := secret.Resolve(ctx, secret.Ref(ref))
	if err != nil {
		return "", "", fmt.Errorf("--client-secret: %w", err)
	}
	return v.Reveal(), "(from --client-secret)", nil
}

// fillAndStart loads the seed file and the generated directory into d,
// then starts it on listen.
func fillAndStart(d *identitydomain.Domain, seedFile string, gen *identitydomain.GenerateConfig, listen string) error {
	if seedFile != "" {
		if err := d.SeedFile(seedFile); err != nil {
			return err
		}
	}
	if gen != nil {
		if err := d.Generate(*gen); err != nil {
			return err
		}
	}
	return d.Start(listen)
}

func parseGenerate(s string) (*identitydomain.GenerateConfig, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return nil, errors.New("want USERS,GROUPS,MEMBERSHIPS")
	}
	n := make([]int, 3)
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q is not a count", p)
		}
		n[i] = v
	}
	return &identitydomain.GenerateConfig{Users: n[0], Groups: n[1], Memberships: n[2], Seed: 1}, nil
}

// clients are the emulated domains' OAuth clients: iamflow's and, unless
// adminID is empty or the same, an administrator's with the same secret.
func clients(iamflowID, adminID, secretText string) []identitydomain.Client {
	cs := []identitydomain.Client{{ID: iamflowID, Secret: secretText, Name: "iamflow"}}
	if adminID != "" && adminID != iamflowID {
		cs = append(cs, identitydomain.Client{ID: adminID, Secret: secretText, Name: "administrator"})
	}
	return cs
}
