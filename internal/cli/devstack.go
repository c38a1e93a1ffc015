package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/emulator/ords"
	"github.com/iamflow/iamflow/internal/app/config"
	idclient "github.com/iamflow/iamflow/internal/identitydomain"
	ordsclient "github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/services/dbprovisioner"
	"github.com/iamflow/iamflow/services/expiry"
	"github.com/iamflow/iamflow/services/replicator"
)

// devDomains are the emulated Identity Domains `iamflow dev` runs when the
// configuration names none: a source whose changes flow to ingest, and a
// target that services write into.
type devDomains struct {
	// clientID is iamflow's own client; adminID is yours (the banner's), as
	// a person at the console would have.
	clientID, clientSecret string
	adminID, adminSecret   string
	names                  []string
	addrs                  []string
	running                []*identitydomain.Domain
	people                 []devPerson
}

func newDevDomains(sourceAddr, targetAddr string) *devDomains {
	return &devDomains{
		clientID: "iamflow-dev", clientSecret: randomHex(16), adminID: "dev-admin", adminSecret: randomHex(16),
		names: []string{"src", "tgt"}, addrs: []string{sourceAddr, targetAddr},
		people: []devPerson{
			{devRequester, "Rita Requester", "asks for access", randomHex(6)},
			{devApprover, "Adam Approver", "approves (group " + devApprovers + ")", randomHex(6)},
			{devOnCallUser, "Olga On-Call", "on call (group " + devOnCall + ")", randomHex(6)},
		},
	}
}

// What dev mode seeds into the emulated source domain: a user to try
// things with (the banner's sample event and grant name it) and the
// temporary group the expiry service manages.
const (
	devUser      = "jane.doe@example.com"
	devTempGroup = "OCI-Temp-Admins"
)

// The people dev mode seeds into src, who log in with 'iamflow login'
// (src is dev's login domain): one who asks for access, one who approves
// (member of devApprovers), one on call (member of devOnCall). Their
// passwords are generated and printed.
const (
	devRequester  = "rita.requester@example.com"
	devApprover   = "adam.approver@example.com"
	devOnCallUser = "olga.oncall@example.com"
	devApprovers  = "Access-Approvers"
	devOnCall     = "On-Call"
	// devLoginClient is the public application people log in with.
	devLoginClient = "iamflow-cli"
)

// devPerson is a seeded person and the password printed for them.
type devPerson struct{ userName, display, role, password string }

// devTemporaryGroup is the expiry service's configuration of devTempGroup.
var devTemporaryGroup = expiry.TemporaryGroup{Domain: "src", Group: devTempGroup, MaxDuration: 8 * time.Hour, DefaultDuration: time.Hour}

// start runs the emulators, the source seeded with devUser and
// devTempGroup; the source posts its events to webhook.
func (d *devDomains) start(webhook, user, password string, log *slog.Logger) error {
	for i, name := range d.names {
		cfg := identitydomain.Config{
			Name: name,
			Clients: []identitydomain.Client{{ID: d.clientID, Secret: d.clientSecret, Name: "iamflow dev client"},
				{ID: d.adminID, Secret: d.adminSecret, Name: "dev admin"},
				{ID: devLoginClient, Public: true, Name: "iamflow", RedirectURIs: []string{"http://127.0.0.1/callback"}}},
			Tier: identitydomain.TierUnlimited,
		}
		if i == 0 {
			cfg.EventsWebhook = identitydomain.EventsWebhook{URL: webhook, Username: user, Password: password}
		}
		dom, err := identitydomain.New(cfg, identitydomain.WithLogger(log.With("emulated_domain", name)))
		if err != nil {
			return fmt.Errorf("emulated domain %s: %w", name, err)
		}
		if i == 0 {
			seed := identitydomain.SeedData{
				Users: []map[string]any{{"userName": devUser, "name": map[string]any{"givenName": "Jane", "familyName": "Doe"},
					"emails": []any{map[string]any{"value": devUser, "type": "work", "primary": true}}}},
				Groups: []map[string]any{{"displayName": devTempGroup},
					{"displayName": devApprovers, "members": []any{devApprover}},
					{"displayName": devOnCall, "members": []any{devOnCallUser}},
					{"displayName": devDevelopers, "members": []any{devRequester, devOnCallUser, devApprover}}},
			}
			for _, p := range d.people {
				seed.Users = append(seed.Users, map[string]any{"userName": p.userName, "displayName": p.display, "password": p.password,
					"emails": []any{map[string]any{"value": p.userName, "type": "work", "primary": true}}})
			}
			if err := dom.LoadSeed(seed); err != nil {
				_ = dom.Close()
				return fmt.Errorf("emulated domain %s: %w", name, err)
			}
		}
		if err := dom.Start(d.addrs[i]); err != nil {
			_ = dom.Close()
			return fmt.Errorf("emulated domain %s on %s: %w (set --%s-addr)", name, d.addrs[i], err, []string{"source", "target"}[i])
		}
		d.running = append(d.running, dom)
	}
	return nil
}

// domains describes the running emulators for iamflow's configuration: ingest
// recognises their events by domain id, and services reach their API with the
// dev client, whose secret is written to a 0600 file in dir and referenced.
func (d *devDomains) domains(dir string) ([]config.Domain, error) {
	secretFile := filepath.Join(dir, "dev-client-secret")
	if err := os.WriteFile(secretFile, []byte(d.clientSecret), 0o600); err != nil {
		return nil, fmt.Errorf("write the dev client secret: %w", err)
	}
	out := make([]config.Domain, 0, len(d.running))
	for _, dom := range d.running {
		c := dom.Config()
		api := idclient.DefaultConfig()
		api.URL, api.ClientID, api.ClientSecret = dom.URL(), d.clientID, secret.Ref("file:"+secretFile)
		api.Tier = idclient.TierPremium
		out = append(out, config.Domain{Name: c.Name, OCIName: c.DisplayName, ID: c.DomainID, Config: api})
	}
	return out, nil
}

// userID is the SCIM id of userName in the source domain, "" if absent.
func (d *devDomains) userID(userName string) string {
	u, _ := d.running[0].UserByName(userName)
	return u.ID
}

func (d *devDomains) close() {
	if d == nil {
		return
	}
	for _, dom := range d.running {
		_ = dom.Close()
	}
}

// The emulated database `iamflow dev` runs when no database is configured:
// members of devDBGroup in the emulated source domain get an account in
// devDB with devDBRole.
const (
	devDB      = "devdb"
	devDBGroup = "DB Users"
	devDBRole  = "APP_READER"
)

// devDatabase is the emulated ORDS of `iamflow dev`, with one database
// seeded with devDBRole.
type devDatabase struct {
	clientID, clientSecret string
	emu                    *ords.Emulator
}

// startDevDatabase runs the emulated ORDS on addr.
func startDevDatabase(addr string, log *slog.Logger) (*devDatabase, error) {
	d := &devDatabase{clientID: "iamflow-dev", clientSecret: randomHex(16)}
	emu, err := ords.New(ords.Config{Databases: []ords.Database{{
		Alias: devDB, ClientID: d.clientID, ClientSecret: d.clientSecret, Roles: []ords.Role{{Name: devDBRole}},
	}}}, ords.WithLogger(log.With("emulated_ords", devDB)))
	if err != nil {
		return nil, fmt.Errorf("emulated ORDS: %w", err)
	}
	if err := emu.Start(addr); err != nil {
		_ = emu.Close()
		return nil, fmt.Errorf("emulated ORDS on %s: %w (set --ords-addr)", addr, err)
	}
	d.emu = emu
	return d, nil
}

// database is the dbprovisioner's configuration of the emulated database:
// the source domain's devDBGroup mapped to devDBRole, the ORDS client secret
// written to a 0600 file in dir and referenced.
func (d *devDatabase) database(dir, domain string) (dbprovisioner.DatabaseConfig, error) {
	secretFile := filepath.Join(dir, "dev-ords-client-secret")
	if err := os.WriteFile(secretFile, []byte(d.clientSecret), 0o600); err != nil {
		return dbprovisioner.DatabaseConfig{}, fmt.Errorf("write the dev ORDS client secret: %w", err)
	}
	oc := ordsclient.DefaultConfig()
	oc.URL, oc.ClientID, oc.ClientSecret = d.emu.BaseURL(devDB), d.clientID, secret.Ref("file:"+secretFile)
	return dbprovisioner.DatabaseConfig{
		Name: devDB, Domain: domain, ORDS: oc,
		Groups: []dbprovisioner.GroupMapping{{Group: devDBGroup, Roles: []string{devDBRole}}},
	}, nil
}

func (d *devDatabase) close() {
	if d != nil && d.emu != nil {
		_ = d.emu.Close()
	}
}

// devAddrs are where dev mode's emulators listen.
type devAddrs struct{ source, target, ords, notifications string }

// devStack is what `iamflow dev` runs beside iamflow when the
// configuration names no domains: emulated src and tgt domains, and an
// emulated ORDS when no database is configured either.
type devStack struct {
	domains *devDomains
	db      *devDatabase
	push    *devPush          // the pushed source "idp" (devpush.go)
	notify  *devNotifications // access requests' notifications (devaccess.go)
}

// startDevStack starts the emulators when cfg names no domains and fills
// cfg the way dev mode runs: the domains, the link src -> tgt, the
// temporary group, and the emulated database. The source sends its events
// to webhook with user and password. Secrets are written to files in dir.
// With domains configured it changes nothing and returns an empty stack.
func startDevStack(cfg *config.Config, dir string, addrs devAddrs, webhook, user, password string, log *slog.Logger) (_ *devStack, err error) {
	st := &devStack{}
	if len(cfg.Domains) > 0 {
		return st, nil
	}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	st.domains = newDevDomains(addrs.source, addrs.target)
	if err := st.domains.start(webhook, user, password, log); err != nil {
		return nil, err
	}
	if cfg.Domains, err = st.domains.domains(dir); err != nil {
		return nil, err
	}
	if len(cfg.Replicator.Links) == 0 {
		cfg.Replicator.Links = []replicator.Link{{Name: devLink, Source: "src", Targets: []string{"tgt"}}}
	}
	if !cfg.Login.Enabled() {
		// People log in with src, the emulated source domain.
		cfg.Login.Domain, cfg.Login.ClientID = "src", devLoginClient
	}
	if len(cfg.Expiry.Groups) == 0 {
		cfg.Expiry.Groups = []expiry.TemporaryGroup{devTemporaryGroup}
		if st.notify, err = addDevAccess(cfg, dir, addrs.notifications, log); err != nil {
			return nil, err
		}
	}
	if len(cfg.Dbprovisioner.Databases) == 0 {
		if st.db, err = startDevDatabase(addrs.ords, log); err != nil {
			return nil, err
		}
		dbc, err := st.db.database(dir, "src")
		if err != nil {
			return nil, err
		}
		cfg.Dbprovisioner.Databases = []dbprovisioner.DatabaseConfig{dbc}
	}
	return st, nil
}

func (s *devStack) close() {
	s.notify.close()
	s.db.close()
	s.domains.close()
}
