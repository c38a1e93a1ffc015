package expiring

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestLookupTellsUnknownLiveAndExpiredApartAndForgetsExpired(t *testing.T) {
	m := New[string](10)
	m.Add("k", "v", t0.Add(time.Minute), t0)
	if v, found, live := m.Lookup("k", t0.Add(time.Minute-time.Nanosecond)); v != "v" || !found || !live {
		t.Fatalf("before expiry: %q found=%v live=%v", v, found, live)
	}
	if _, found, live := m.Lookup("other", t0); found || live {
		t.Fatalf("unknown key: found=%v live=%v", found, live)
	}
	// At the expiry instant the entry is dead, and it is forgotten.
	if v, found, live := m.Lookup("k", t0.Add(time.Minute)); v != "v" || !found || live {
		t.Fatalf("at expiry: %q found=%v live=%v", v, found, live)
	}
	if _, found, _ := m.Lookup("k", t0); found {
		t.Fatal("an expired entry is found again after Lookup reported it expired")
	}
}

func TestTakeUsesAnEntryOnce(t *testing.T) {
	m := New[int](0)
	m.Add("c", 7, t0.Add(time.Second), t0)
	v, exp, ok := m.Take("c")
	if v != 7 || !ok || !exp.Equal(t0.Add(time.Second)) {
		t.Fatalf("take: %d %v %v", v, exp, ok)
	}
	if _, _, ok := m.Take("c"); ok {
		t.Fatal("taken twice")
	}
}

func TestAddSweepsExpiredEntriesOnlyFromTheThreshold(t *testing.T) {
	m := New[int](3)
	m.Add("a", 1, t0.Add(time.Second), t0)
	m.Add("b", 2, t0.Add(time.Second), t0)
	// Two entries, below the threshold: nothing is swept though both expired.
	m.Add("c", 3, t0.Add(time.Hour), t0.Add(time.Minute))
	if n := m.Len(); n != 3 {
		t.Fatalf("below the threshold: %d entries, want 3", n)
	}
	// Three entries: the two expired ones go, the live one stays.
	m.Add("d", 4, t0.Add(time.Hour), t0.Add(time.Minute))
	if n := m.Len(); n != 2 {
		t.Fatalf("at the threshold: %d entries, want 2", n)
	}
	if _, _, live := m.Lookup("c", t0.Add(time.Minute)); !live {
		t.Fatal("a live entry was swept")
	}
	m.Clear()
	if n := m.Len(); n != 0 {
		t.Fatalf("after Clear: %d entries", n)
	}
}

func TestSweepOnEveryAddWithZeroThreshold(t *testing.T) {
	m := New[int](0)
	m.Add("a", 1, t0.Add(time.Second), t0)
	m.Add("b", 2, t0.Add(time.Hour), t0.Add(time.Minute))
	if n := m.Len(); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}
