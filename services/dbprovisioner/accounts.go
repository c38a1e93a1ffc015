package dbprovisioner

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// accountsBucket is the JetStream KV bucket where the service remembers,
// per database and IAM user id, the userName whose account it provisioned.
const accountsBucket = "iamflow_dbprovisioner_accounts"

// accountBook remembers which userName each IAM user's account was made
// for. An account is named after a userName, and an event about a user
// carries only the user's id reliably (a membership event names the member
// by display name, a delete by a name that may have been reused since): the
// book says which account belonged to the user when the user is gone or
// renamed, so the account of a deleted user is locked and the account of a
// user's old name does not stay open after a rename.
type accountBook struct {
	kv jetstream.KeyValue // nil: kept in memory (tests of the logic)

	mu  sync.Mutex
	mem map[string]string
}

func openAccountBook(ctx context.Context, b *bus.Bus) (*accountBook, error) {
	if b == nil {
		return &accountBook{mem: map[string]string{}}, nil
	}
	kv, err := servicekit.OpenBucket(ctx, b, Name, jetstream.KeyValueConfig{
		Bucket: accountsBucket, Description: "iamflow dbprovisioner: the userName each IAM user's account was made for",
	})
	if err != nil {
		return nil, err
	}
	return &accountBook{kv: kv}, nil
}

func bookKey(db, userID string) string {
	return db + "." + base64.RawURLEncoding.EncodeToString([]byte(userID))
}

// get returns the userName recorded for the user, "" when none.
func (a *accountBook) get(ctx context.Context, db, userID string) (string, error) {
	if userID == "" {
		return "", nil
	}
	if a.kv == nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.mem[bookKey(db, userID)], nil
	}
	e, err := a.kv.Get(ctx, bookKey(db, userID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("database %s: read the account book: %w", db, err)
	}
	return string(e.Value()), nil
}

// put records that the user's account is the one of userName.
func (a *accountBook) put(ctx context.Context, db, userID, userName string) error {
	if userID == "" || userName == "" {
		return nil
	}
	if a.kv == nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.mem[bookKey(db, userID)] = userName
		return nil
	}
	if _, err := a.kv.Put(ctx, bookKey(db, userID), []byte(userName)); err != nil {
		return fmt.Errorf("database %s: write the account book: %w", db, err)
	}
	return nil
}

// forget drops the user's record.
func (a *accountBook) forget(ctx context.Context, db, userID string) error {
	if userID == "" {
		return nil
	}
	if a.kv == nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.mem, bookKey(db, userID))
		return nil
	}
	if err := a.kv.Delete(ctx, bookKey(db, userID)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("database %s: write the account book: %w", db, err)
	}
	return nil
}
