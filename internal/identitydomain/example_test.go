package identitydomain_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// Example shows the shape of a reconcile step: look up, create if missing,
// add to a group, and tell terminal errors from retryable ones.
func Example() {
	ctx := context.Background()
	cfg := identitydomain.DefaultConfig()
	cfg.URL = "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com"
	cfg.ClientID = "0d7c3e1f9a8b4c2d"
	cfg.ClientSecret = "env:IAMFLOW_TARGET_SECRET"
	cfg.Tier = identitydomain.TierPremium
	c, err := identitydomain.New(ctx, "target", cfg)
	if err != nil {
		log.Fatal(err)
	}

	u, found, err := c.FindUserByName(ctx, `o"brien@example.com`) // values are quoted for the filter
	if err != nil {
		log.Fatal(err)
	}
	if !found {
		var r identitydomain.Receipt
		if u, r, err = c.CreateUser(ctx, newUser(`o"brien@example.com`)); err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Outcome, r.RequestID) // created (or existed, after a lost answer)
	}
	g, _, err := c.FindGroupByName(ctx, "db-admins")
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.AddMembers(ctx, *g.Id, *u.Id)
	switch {
	case err == nil:
	case errors.Is(err, identitydomain.ErrNotFound):
		// the group went away meanwhile: terminal for this event
	case identitydomain.Retryable(err):
		// redeliver later; RetryAfter is the domain's hint, 0 when it gave none
		fmt.Println("retry after", identitydomain.RetryAfter(err))
	default:
		log.Fatal(err) // dead-letter with the reason
	}

	for m, err := range c.GroupMembers(ctx, *g.Id, 0) { // any size, 10,000 at a time
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(*m.Value)
	}
}
