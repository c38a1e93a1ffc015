package ingest

import "sync"

// logOnce remembers which keys were logged, up to a bound, so a stream of
// distinct unknown types from a misconfigured sender cannot grow memory
// without limit. Past the bound nothing more is logged (counters still count).
type logOnce struct {
	mu   sync.Mutex
	seen map[string]struct{}
	max  int
}

func newLogOnce(max int) *logOnce { return &logOnce{seen: map[string]struct{}{}, max: max} }

// first reports whether key is new and there was room to remember it.
func (l *logOnce) first(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[key]; ok || len(l.seen) >= l.max {
		return false
	}
	l.seen[key] = struct{}{}
	return true
}
