// Package listen is the HTTP listener the emulators share: started once on
// an address, its URL while it serves, closed once and gracefully.
package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves one emulator's handler. Make it with New.
type Server struct {
	name, what string // "ords", "emulator": the prefix of errors and what is closed

	mu     sync.Mutex
	ln     net.Listener
	srv    *http.Server
	closed bool
	conns  map[net.Conn]http.ConnState
	wg     sync.WaitGroup
}

// New returns a server not yet started; name prefixes its errors ("ords")
// and what names the emulator in them ("emulator", "domain").
func New(name, what string) *Server {
	return &Server{name: name, what: what}
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves h in the background
// until Close; log gets the error that ends serving early. It returns the
// root URL served, e.g. "http://127.0.0.1:40123".
func (s *Server) Start(addr string, h http.Handler, log *slog.Logger) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", fmt.Errorf("%s: start: %s is closed", s.name, s.what)
	}
	if s.srv != nil {
		return "", fmt.Errorf("%s: start: already started", s.name)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: start: %w", s.name, err)
	}
	s.ln = ln
	s.conns = map[net.Conn]http.ConnState{}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ConnState: s.trackConn}
	srv := s.srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve", "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// URL returns the root URL served after Start, or "" before.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops serving: connections that never sent a request are closed at
// once, requests in flight are cut off after 5s. It is safe to call more
// than once; a closed server does not start again.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	var err error
	if srv != nil {
		s.closeUnusedConns()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e := srv.Shutdown(ctx); e != nil {
			err = fmt.Errorf("%s: close: %w", s.name, e)
			_ = srv.Close()
		}
	}
	s.wg.Wait()
	return err
}

// trackConn remembers connections that have not sent a request yet:
// http.Server.Shutdown waits up to 5s for those (a client's transport often
// dials spare connections), so Close closes them itself.
func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	default:
		s.conns[c] = st
	}
}

func (s *Server) closeUnusedConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, st := range s.conns {
		if st == http.StateNew {
			_ = c.Close()
		}
	}
}

// Emulator is what Run serves: an emulator's own Start and Close.
type Emulator interface {
	Start(addr string) error
	Close() error
}

// Run starts e on addr, calls ready (when not nil), serves until ctx is
// cancelled and then closes e; an emulator that fails to start is closed
// too. It is what the emulators' Run functions (the emulate commands) do.
func Run(ctx context.Context, e Emulator, addr string, ready func()) error {
	if err := e.Start(addr); err != nil {
		_ = e.Close()
		return err
	}
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	return e.Close()
}
