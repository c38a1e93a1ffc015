package app

import (
	"context"
	"fmt"

	"github.com/iamflow/iamflow/internal/scimserver"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/services/ingest"
)

// pushedSources builds the SCIM endpoint of the pushed sources (domains
// with push) and returns the mounts that serve it beside ingest's webhook;
// none when no domain is pushed.
func (a *App) pushedSources(ctx context.Context) ([]ingest.Mount, error) {
	domains := a.cfg.PushedSources()
	if len(domains) == 0 {
		return nil, nil
	}
	sources := make([]scimserver.Source, 0, len(domains))
	for _, d := range domains {
		tok, err := secret.Resolve(ctx, d.Push.Token)
		if err != nil {
			return nil, fmt.Errorf("domain %s: push.token: %w", d.Name, err)
		}
		if !a.cfg.Dev {
			if err := secret.CheckStrength(fmt.Sprintf("domain %s: push.token", d.Name), tok); err != nil {
				return nil, err
			}
		}
		sources = append(sources, scimserver.Source{Name: d.Name, Path: d.Push.PathOf(d.Name), Token: tok})
	}
	srv, err := scimserver.New(ctx, a.bus, sources,
		scimserver.WithLogger(a.log.With("service", ingest.Name, "part", "scim")),
		scimserver.WithRegisterer(a.registry),
		scimserver.WithPublishTimeout(a.cfg.Ingest.PublishTimeout),
		scimserver.WithRetryAfter(a.cfg.Ingest.RetryAfter),
		scimserver.WithMaxBodyBytes(a.cfg.Ingest.MaxBodyBytes))
	if err != nil {
		return nil, err
	}
	a.scim = srv
	h := srv.Handler()
	mounts := make([]ingest.Mount, 0, len(sources))
	for _, p := range srv.Paths() {
		mounts = append(mounts, ingest.Mount{Path: p, Handler: h})
	}
	return mounts, nil
}
