package dbprovisioner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/iamflow/iamflow/internal/ords"
)

// NewDatabase adapts an ORDS client to Database: catalog reads are the
// contract's queries with bind variables (ords.QueryUser, QueryUserRoles,
// QueryUsersByExternalName, QueryRole) and Exec runs the statements the
// planner built. Retries, authentication and the in-flight bound are the
// client's; errors are classified for the service: transient ones (HTTP 429,
// 5xx, pool exhausted, ORA-00054, ...) keep their Retry-After, ORA-01918
// (user does not exist) and ORA-01951 (role not granted) are races a fresh
// plan resolves and are retried too, and everything else (ORA-01031,
// ORA-01919, ORA-01920, ORA-00900, 4xx, ...) wraps ErrPermanent.
func NewDatabase(c *ords.Client) Database { return &ordsDatabase{c: c} }

type ordsDatabase struct{ c *ords.Client }

var _ Database = (*ordsDatabase)(nil)

func (d *ordsDatabase) UserByName(ctx context.Context, name ords.Identifier) (DBUser, bool, error) {
	st, err := ords.QueryUser(name)
	if err != nil {
		return DBUser{}, false, err
	}
	rows, err := d.c.Query(ctx, st)
	if err != nil {
		return DBUser{}, false, classifyORDS(err)
	}
	if len(rows) == 0 {
		return DBUser{}, false, nil
	}
	return dbUserFrom(rows[0]), true, nil
}

func (d *ordsDatabase) RolesOf(ctx context.Context, grantee ords.Identifier) ([]string, error) {
	st, err := ords.QueryUserRoles(grantee)
	if err != nil {
		return nil, err
	}
	rows, err := d.c.Query(ctx, st)
	if err != nil {
		return nil, classifyORDS(err)
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		if v := r.String("granted_role"); v != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

func (d *ordsDatabase) MappedUsers(ctx context.Context, pattern string) ([]DBUser, error) {
	st, err := ords.QueryUsersByExternalName(pattern)
	if err != nil {
		return nil, err
	}
	rows, err := d.c.Query(ctx, st)
	if err != nil {
		return nil, classifyORDS(err)
	}
	out := make([]DBUser, 0, len(rows))
	for _, r := range rows {
		out = append(out, dbUserFrom(r))
	}
	return out, nil
}

func (d *ordsDatabase) RoleExists(ctx context.Context, role ords.Identifier) (bool, error) {
	st, err := ords.QueryRole(role)
	if err != nil {
		return false, err
	}
	rows, err := d.c.Query(ctx, st)
	if err != nil {
		return false, classifyORDS(err)
	}
	return len(rows) > 0, nil
}

func (d *ordsDatabase) Exec(ctx context.Context, st ords.Statement) error {
	if err := d.c.Exec(ctx, st); err != nil {
		return classifyORDS(err)
	}
	return nil
}

func dbUserFrom(r ords.Row) DBUser {
	return DBUser{Name: r.String("username"), Status: r.String("account_status"), ExternalName: r.String("external_name")}
}

// classifyORDS marks an ORDS client error: transient (with its Retry-After),
// a race a fresh plan resolves (retried), or ErrPermanent.
func classifyORDS(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var after time.Duration
	var oe *ords.Error
	if errors.As(err, &oe) {
		after = oe.RetryAfter
	}
	switch {
	case ords.Retryable(err):
		return &classified{err: err, after: after}
	case ords.Code(err) == ords.ORAUserNotFound, ords.Code(err) == ords.ORARoleNotGranted:
		return &classified{err: fmt.Errorf("%w (the account changed since it was read; planning again)", err)}
	}
	return &classified{err: err, class: ErrPermanent}
}
