package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/services/expiry"
	"github.com/iamflow/iamflow/services/expiry/access"
)

// withAccess adds the access-request workflow to the expiry service when
// the configuration has policies (expiry.access): its API on the admin
// server, open to people who log in, and its manager (deadlines and
// notifications) running beside the service.
func (a *App) withAccess(ctx context.Context, svc *expiry.Service) (Service, error) {
	cfg := a.cfg.Expiry.Access
	if len(cfg.Policies) == 0 {
		return svc, nil
	}
	if err := cfg.Validate(a.cfg.Expiry.Temporary); err != nil {
		return nil, fmt.Errorf("expiry.access: %w", err)
	}
	m, err := access.New(ctx, cfg, a.bus, access.Grants(svc), servicekit.WithLogger(a.log.With("service", expiry.Name, "part", "access")))
	if err != nil {
		return nil, err
	}
	if err := access.NewAPI(m).Endpoint().ServeOn(a.admin); err != nil {
		return nil, err
	}
	a.admin.AllowPeople(access.PeopleCalls...)
	return &expiryWithAccess{Service: svc, access: m}, nil
}

// expiryWithAccess is the expiry service with its request workflow: one
// service to run, status and readiness its own.
type expiryWithAccess struct {
	*expiry.Service
	access *access.Manager
}

// Run runs both until ctx ends or one of them fails.
func (s *expiryWithAccess) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, run := range []func(context.Context) error{s.Service.Run, s.access.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = run(ctx); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
