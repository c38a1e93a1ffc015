// Package expiring keeps the short-lived secrets an emulator hands out
// (access tokens, authorization codes) until they expire. Both emulators
// issue them the same way: an opaque key, a value, an expiry, and a sweep of
// the expired ones so that a long test run does not grow without bound.
package expiring

import (
	"sync"
	"time"
)

// Map holds values under opaque keys until their expiry. It is safe for
// concurrent use.
type Map[V any] struct {
	mu      sync.Mutex
	sweepAt int
	m       map[string]entry[V]
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// New returns an empty Map that forgets the expired entries whenever Add
// finds it holding sweepAt entries or more; 0 sweeps on every Add.
func New[V any](sweepAt int) *Map[V] {
	return &Map[V]{sweepAt: sweepAt, m: map[string]entry[V]{}}
}

// Add stores v under key until expires; now decides which entries the sweep
// forgets.
func (m *Map[V]) Add(key string, v V, expires, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.m) >= m.sweepAt {
		for k, e := range m.m {
			if !now.Before(e.expires) {
				delete(m.m, k)
			}
		}
	}
	m.m[key] = entry[V]{v: v, expires: expires}
}

// Lookup returns the value under key: found says whether there is one,
// live whether it has not expired at now. An expired entry is forgotten, so
// a second Lookup does not find it.
func (m *Map[V]) Lookup(key string, now time.Time) (v V, found, live bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, found := m.m[key]
	if !found {
		return v, false, false
	}
	if !now.Before(e.expires) {
		delete(m.m, key)
		return e.v, true, false
	}
	return e.v, true, true
}

// Take returns the value under key and its expiry, and forgets it: a value
// taken is used once. ok is false when there is none.
func (m *Map[V]) Take(key string) (v V, expires time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[key]
	delete(m.m, key)
	return e.v, e.expires, ok
}

// Clear forgets every entry.
func (m *Map[V]) Clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.m)
}

// Len is the number of entries held, expired ones not yet swept included.
func (m *Map[V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
