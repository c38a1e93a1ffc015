package admin

import "time"

// SetReadinessTimeout shortens /readyz's deadline for tests.
func SetReadinessTimeout(s *Server, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readyTimeout = d
}
