package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
)

// maxSessions bounds the sessions kept at once; sign-in is refused beyond.
const maxSessions = 10000

// Principal is who a session acts for, as pages show it.
type Principal struct {
	// Kind is "operator" (the admin token), "dev" (dev mode, no
	// authentication) or "person" (an Identity Domain login).
	Kind string `json:"kind"`
	// Name is what pages call them: "operator (admin token)", a userName.
	Name string `json:"name"`
}

// session is one signed-in browser. The credential is what the console
// sends to the admin API on the session's behalf ("Authorization: Bearer
// <credential>"); it never goes back to the browser.
type session struct {
	principal  Principal
	credential secret.Value
	csrf       string
	created    time.Time
	expires    time.Time // the absolute end: created + TTL, or the credential's expiry if sooner
	lastSeen   time.Time
}

// store keeps sessions in memory, keyed by the SHA-256 of their id, so the
// map holds nothing a cookie could be rebuilt from. Sessions live as long
// as the process: a restart signs everyone out.
type store struct {
	ttl, idle time.Duration
	now       func() time.Time

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]*session
}

var errTooManySessions = errors.New("too many open sessions; try again later")

func newStore(ttl, idle time.Duration, now func() time.Time) *store {
	return &store{ttl: ttl, idle: idle, now: now, sessions: map[[sha256.Size]byte]*session{}}
}

// create starts a session for p and returns its id (the cookie value).
// until, when not zero, ends it sooner (a credential's own expiry).
func (s *store) create(p Principal, credential secret.Value, until time.Time) (string, *session, error) {
	now := s.now()
	id, csrf := randomToken(), randomToken()
	sess := &session{principal: p, credential: credential, csrf: csrf, created: now, expires: now.Add(s.ttl), lastSeen: now}
	if !until.IsZero() && until.Before(sess.expires) {
		sess.expires = until
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) >= maxSessions {
		s.sweepLocked(now)
		if len(s.sessions) >= maxSessions {
			return "", nil, errTooManySessions
		}
	}
	s.sessions[sha256.Sum256([]byte(id))] = sess
	return id, sess, nil
}

// get returns the live session of id and marks it used; expired sessions
// are removed and reported as missing.
func (s *store) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	key := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[key]
	if !ok {
		return nil, false
	}
	if s.expiredLocked(sess, now) {
		delete(s.sessions, key)
		return nil, false
	}
	sess.lastSeen = now
	return sess, true
}

// delete ends the session of id.
func (s *store) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sha256.Sum256([]byte(id)))
}

func (s *store) expiredLocked(sess *session, now time.Time) bool {
	return !now.Before(sess.expires) || now.Sub(sess.lastSeen) >= s.idle
}

func (s *store) sweepLocked(now time.Time) {
	for k, sess := range s.sessions {
		if s.expiredLocked(sess, now) {
			delete(s.sessions, k)
		}
	}
}

// len is the number of sessions kept (expired ones included until swept).
func (s *store) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// checkCSRF compares a request's token with the session's in constant time.
func (sess *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
}

// randomToken is 32 random bytes, base64url without padding.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
