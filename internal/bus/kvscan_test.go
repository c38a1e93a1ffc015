package bus_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
)

// EachValue yields every current value under its filter once (not the
// deleted ones, not the older revisions, not the keys outside it), and
// stops at the callback's first error.
func TestEachValue(t *testing.T) {
	kv := bustest.KV(t, jetstream.KeyValueConfig{Bucket: "scan_test", History: 5})
	ctx := context.Background()
	for _, kvp := range [][2]string{{"a.1", "old"}, {"a.1", "new"}, {"a.2", "two"}, {"a.3", "gone"}, {"b.1", "other"}} {
		if _, err := kv.PutString(ctx, kvp[0], kvp[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "a.3"); err != nil {
		t.Fatal(err)
	}
	read := func(filter string) []string {
		t.Helper()
		var got []string
		if err := bus.EachValue(ctx, kv, filter, func(e jetstream.KeyValueEntry) error {
			got = append(got, e.Key()+"="+string(e.Value()))
			return nil
		}); err != nil {
			t.Fatalf("EachValue(%q): %v", filter, err)
		}
		slices.Sort(got)
		return got
	}
	if got, want := read("a.*"), []string{"a.1=new", "a.2=two"}; !slices.Equal(got, want) {
		t.Errorf("a.*: %v, want %v", got, want)
	}
	if got, want := read(">"), []string{"a.1=new", "a.2=two", "b.1=other"}; !slices.Equal(got, want) {
		t.Errorf(">: %v, want %v", got, want)
	}
	if got := read("c.>"); len(got) != 0 {
		t.Errorf("c.>: %v, want nothing", got)
	}
	stop := errors.New("stop")
	calls := 0
	err := bus.EachValue(ctx, kv, ">", func(jetstream.KeyValueEntry) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("a callback error: %v after %d calls, want %v after 1", err, calls, stop)
	}
}
