package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/emulator/ords"
	"github.com/iamflow/iamflow/internal/config"
	idclient "github.com/iamflow/iamflow/internal/identitydomain"
	ordsclient "github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/services/dbprovisioner"
)

// devDomains are the emulated Identity Domains `iamflow dev` runs when the
// configuration names none: a source whose changes flow to ingest, and a
// target that services write into.
type devDomains struct {
	// clientID is iamflow's own client; adminID is yours (the banner's): a
	// change iamflow's client makes is iamflow's own, and not replicated.
	clientID, clientSecret string
	adminID, adminSecret   string
	names                  []string
	addrs                  []string
	running                []*identitydomain.Domain
}

func newDevDomains(sourceAddr, targetAddr string) *devDomains {
	return &devDomains{
		clientID: "iamflow-dev", clientSecret: randomHex(16), adminID: "dev-admin", adminSecret: randomHex(16),
		names: []string{"src", "tgt"}, addrs: []string{sourceAddr, targetAddr},
	}
}

// start runs the emulators; the source posts its events to webhook.
func (d *devDomains) start(webhook, user, password string, log *slog.Logger) error {
	for i, name := range d.names {
		cfg := identitydomain.Config{
			Name: name,
			Clients: []identitydomain.Client{{ID: d.clientID, Secret: d.clientSecret, Name: "iamflow dev client"},
				{ID: d.adminID, Secret: d.adminSecret, Name: "dev admin"}},
			Tier: identitydomain.TierUnlimited,
		}
		if i == 0 {
			cfg.EventsWebhook = identitydomain.EventsWebhook{URL: webhook, Username: user, Password: password}
		}
		dom, err := identitydomain.New(cfg, identitydomain.WithLogger(log.With("emulated_domain", name)))
		if err != nil {
			return fmt.Errorf("emulated domain %s: %w", name, err)
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

func (d *devDomains) close() {
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
