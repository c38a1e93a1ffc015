package servicekit

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus/bustest"
)

// Records reads what it stored, refuses a second record under one id,
// changes a record only at the revision it was read at (ErrConflict
// otherwise), and names the kind and the id in its errors.
func TestRecords(t *testing.T) {
	kv := bustest.KV(t, jetstream.KeyValueConfig{Bucket: "records_test"})
	ctx := context.Background()
	recs := Records[int]{
		KV: kv, Kind: "counter", Key: func(id string) string { return "c." + id },
		Encode: func(n int) ([]byte, error) { return []byte(strconv.Itoa(n)), nil },
		Decode: func(b []byte) (int, error) { return strconv.Atoi(string(b)) },
	}

	if _, _, err := recs.Get(ctx, "a"); !errors.Is(err, jetstream.ErrKeyNotFound) || !strings.Contains(err.Error(), "counter a") {
		t.Fatalf("Get of a missing record: %v, want ErrKeyNotFound naming counter a", err)
	}
	rev, err := recs.Create(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recs.Create(ctx, "a", 2); err == nil || !strings.Contains(err.Error(), "counter a") {
		t.Fatalf("second Create: %v, want an error naming counter a", err)
	}
	if v, got, err := recs.Get(ctx, "a"); err != nil || v != 1 || got != rev {
		t.Fatalf("Get = %d at %d, %v; want 1 at %d", v, got, err, rev)
	}
	next, err := recs.Update(ctx, "a", 2, rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recs.Update(ctx, "a", 3, rev); !errors.Is(err, ErrConflict) {
		t.Fatalf("Update at a stale revision: %v, want ErrConflict", err)
	}
	if v, got, err := recs.Get(ctx, "a"); err != nil || v != 2 || got != next {
		t.Fatalf("after the lost update Get = %d at %d, %v; want 2 at %d", v, got, err, next)
	}
	if _, err := kv.PutString(ctx, "c.bad", "x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := recs.Get(ctx, "bad"); err == nil || !strings.Contains(err.Error(), "decode counter bad") {
		t.Fatalf("Get of an undecodable record: %v, want an error naming it", err)
	}
}
