package replicator

import (
	"context"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

func TestIDMap(t *testing.T) {
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	m, err := openIDMap(ctx, b.JetStream(), "", Placement{}, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	users := scope{Link: "hub-to-spoke", Source: "hub", Target: "spoke", Kind: planner.KindUser}
	groups := scope{Link: "hub-to-spoke", Source: "hub", Target: "spoke", Kind: planner.KindGroup}

	t.Run("absent", func(t *testing.T) {
		if _, found, err := m.Get(ctx, users, "nobody"); err != nil || found {
			t.Fatalf("Get = %v, %v", found, err)
		}
	})
	t.Run("put then get both ways", func(t *testing.T) {
		// ids with characters that are not key-safe are encoded.
		if err := m.Put(ctx, users, planner.Mapping{SourceID: "ocid1.user/a b", TargetID: "t-1", Origin: planner.OriginCreated}); err != nil {
			t.Fatal(err)
		}
		got, found, err := m.Get(ctx, users, "ocid1.user/a b")
		if err != nil || !found || got.TargetID != "t-1" || !got.Managed() || !got.Updated.Equal(at) {
			t.Fatalf("Get = %+v, %v, %v", got, found, err)
		}
		rev, found, err := m.Get(ctx, users.Reverse(), "t-1")
		if err != nil || !found || rev.TargetID != "ocid1.user/a b" || rev.Origin != planner.OriginCreated {
			t.Fatalf("reverse Get = %+v, %v, %v", rev, found, err)
		}
		if rev.Managed() {
			t.Error("a reverse entry claims iamflow manages the original")
		}
		if ok, err := m.managedTarget(ctx, users, "t-1"); err != nil || !ok {
			t.Errorf("ManagedTarget(t-1) = %v, %v", ok, err)
		}
		if ok, err := m.managedTarget(ctx, users.Reverse(), "ocid1.user/a b"); err != nil || ok {
			t.Errorf("ManagedTarget of the original = %v, %v", ok, err)
		}
		if _, found, _ := m.Get(ctx, groups, "ocid1.user/a b"); found {
			t.Fatal("a user mapping is visible as a group mapping")
		}
	})
	t.Run("remap drops the old reverse", func(t *testing.T) {
		if err := m.Put(ctx, groups, planner.Mapping{SourceID: "g1", TargetID: "old", Origin: planner.OriginAdopted}); err != nil {
			t.Fatal(err)
		}
		if err := m.Put(ctx, groups, planner.Mapping{SourceID: "g1", TargetID: "new", Origin: planner.OriginCreated}); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := m.Get(ctx, groups.Reverse(), "old"); found {
			t.Fatal("old reverse mapping survived")
		}
		if got, _, _ := m.Get(ctx, groups, "g1"); got.TargetID != "new" || got.Origin != planner.OriginCreated {
			t.Fatalf("Get = %+v", got)
		}
	})
	t.Run("delete forgets both ways and is idempotent", func(t *testing.T) {
		for range 2 {
			if err := m.Delete(ctx, groups, "g1"); err != nil {
				t.Fatal(err)
			}
		}
		if _, found, _ := m.Get(ctx, groups, "g1"); found {
			t.Fatal("forward mapping survived")
		}
		if _, found, _ := m.Get(ctx, groups.Reverse(), "new"); found {
			t.Fatal("reverse mapping survived")
		}
	})
	t.Run("invalid input", func(t *testing.T) {
		if err := m.Put(ctx, users, planner.Mapping{SourceID: "a", TargetID: "b"}); err == nil {
			t.Error("a mapping without origin was stored")
		}
		if err := m.Put(ctx, scope{Link: "l", Source: "a", Target: "b"}, planner.Mapping{SourceID: "a", TargetID: "b", Origin: planner.OriginCreated}); err == nil {
			t.Error("a mapping without kind was stored")
		}
	})
	t.Run("survives reopening", func(t *testing.T) {
		m2, err := openIDMap(ctx, b.JetStream(), defaultIDBucket, Placement{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, found, err := m2.Get(ctx, users, "ocid1.user/a b"); err != nil || !found || got.TargetID != "t-1" {
			t.Fatalf("Get after reopen = %+v, %v, %v", got, found, err)
		}
	})
}
