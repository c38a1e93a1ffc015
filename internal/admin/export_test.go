package admin

import "time"

// SetReadinessTimeout shortens /readyz's deadline for tests.
func SetReadinessTimeout(s *Server, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readyTimeout = d
}

// ReadOnlyMethod is readOnlyMethod, for the test that holds it to the HTTP
// rules.
func ReadOnlyMethod(fullMethod string) bool { return readOnlyMethod(fullMethod) }
