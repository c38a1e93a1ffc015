package dbprovisioner

import (
	"context"
	"fmt"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/ords"
)

// NewDatabase adapts an ORDS client to Database: catalog reads are the
// contract's queries with bind variables (ords.QueryUser, QueryUserRoles,
// QueryUsersByExternalName, QueryRole) and Exec runs the statements the
// planner built. Retries, authentication and the in-flight bound are the
// client's. Transient errors (HTTP 429, 5xx, pool exhausted, ORA-00054, ...)
// keep their Retry-After, ORA-01918 (user does not exist), ORA-01920 (user
// name conflicts: made meanwhile) and ORA-01951 (role not granted) are
// races a fresh plan resolves and are retried too, and everything else
// (ORA-01031, ORA-01919, ORA-00900, 4xx, ...) is permanent (see dbErr).
func NewDatabase(c *ords.Client) Database { return &ordsDatabase{c: c} }

type ordsDatabase struct{ c *ords.Client }

var _ Database = (*ordsDatabase)(nil)

// query runs the catalog query build makes of arg; a failed run is what
// dbErr makes of it, a query that cannot be built is returned as is.
func query[A any](ctx context.Context, d *ordsDatabase, build func(A) (ords.Statement, error), arg A) ([]ords.Row, error) {
	st, err := build(arg)
	if err != nil {
		return nil, err
	}
	rows, err := d.c.Query(ctx, st)
	if err != nil {
		return nil, dbErr(err)
	}
	return rows, nil
}

func (d *ordsDatabase) UserByName(ctx context.Context, name ords.Identifier) (DBUser, bool, error) {
	rows, err := query(ctx, d, ords.QueryUser, name)
	if err != nil || len(rows) == 0 {
		return DBUser{}, false, err
	}
	return dbUserFrom(rows[0]), true, nil
}

func (d *ordsDatabase) RolesOf(ctx context.Context, grantee ords.Identifier) ([]string, error) {
	rows, err := query(ctx, d, ords.QueryUserRoles, grantee)
	if err != nil {
		return nil, err
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
	rows, err := query(ctx, d, ords.QueryUsersByExternalName, pattern)
	if err != nil {
		return nil, err
	}
	out := make([]DBUser, 0, len(rows))
	for _, r := range rows {
		out = append(out, dbUserFrom(r))
	}
	return out, nil
}

func (d *ordsDatabase) RoleExists(ctx context.Context, role ords.Identifier) (bool, error) {
	rows, err := query(ctx, d, ords.QueryRole, role)
	return len(rows) > 0, err
}

func (d *ordsDatabase) Exec(ctx context.Context, st ords.Statement) error {
	if err := d.c.Exec(ctx, st); err != nil {
		return dbErr(err)
	}
	return nil
}

func dbUserFrom(r ords.Row) DBUser {
	return DBUser{Name: r.String("username"), Status: r.String("account_status"), ExternalName: r.String("external_name")}
}

// dbErr is an ORDS client error as the service acts on it: a statement
// that met an account changed since it was read (ORA-01918 user does not
// exist: dropped meanwhile; ORA-01920 user name conflicts: created
// meanwhile; ORA-01951 role not granted: revoked meanwhile) is a race a
// fresh plan resolves, so it is retried (syncOne reads and plans again at
// once after ORA-01920, and tells a name a role holds from an account made
// meanwhile); whatever ords.Retryable calls terminal is permanent; the
// rest keeps the client's Retry-After.
func dbErr(err error) error {
	switch code := ords.Code(err); {
	case code == ords.ORAUserNotFound, code == ords.ORAUserConflict, code == ords.ORARoleNotGranted:
		return bus.Transient(fmt.Errorf("%w (the account changed since it was read; planning again)", err))
	case !ords.Retryable(err):
		return bus.Permanent(err)
	}
	return err
}
