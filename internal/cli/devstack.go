package cli

import (
	"fmt"
	"log/slog"

	"github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/config"
)

// devDomains are the emulated Identity Domains `iamflow dev` runs when the
// configuration names none: a source whose changes flow to ingest, and a
// target that later services replicate into.
type devDomains struct {
	clientID, clientSecret string
	names                  []string
	addrs                  []string
	running                []*identitydomain.Domain
}

func newDevDomains(sourceAddr, targetAddr string) *devDomains {
	return &devDomains{
		clientID: "iamflow-dev", clientSecret: randomHex(16),
		names: []string{"src", "tgt"}, addrs: []string{sourceAddr, targetAddr},
	}
}

// config returns the emulator configuration of domain i; only the source
// sends its events to ingest.
func (d *devDomains) config(i int, webhook, user, password string) identitydomain.Config {
	cfg := identitydomain.Config{
		Name:    d.names[i],
		Clients: []identitydomain.Client{{ID: d.clientID, Secret: d.clientSecret, Name: "iamflow dev client"}},
		Tier:    identitydomain.TierUnlimited,
	}
	if i == 0 && webhook != "" {
		cfg.EventsWebhook = identitydomain.EventsWebhook{URL: webhook, Username: user, Password: password}
	}
	return cfg
}

// domains describes the emulated domains for iamflow's configuration, so
// ingest recognises their events by domain id and name.
func (d *devDomains) domains() ([]config.Domain, error) {
	out := make([]config.Domain, 0, len(d.names))
	for i := range d.names {
		probe, err := identitydomain.New(d.config(i, "", "", ""))
		if err != nil {
			return nil, err
		}
		c := probe.Config()
		_ = probe.Close()
		out = append(out, config.Domain{Name: c.Name, OCIName: c.DisplayName, ID: c.DomainID})
	}
	return out, nil
}

// start runs the emulators, the source posting its events to webhook.
func (d *devDomains) start(webhook, user, password string, log *slog.Logger) error {
	for i, name := range d.names {
		dom, err := identitydomain.New(d.config(i, webhook, user, password), identitydomain.WithLogger(log.With("emulated_domain", name)))
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

func (d *devDomains) close() {
	for _, dom := range d.running {
		_ = dom.Close()
	}
}
