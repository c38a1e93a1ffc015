// Package bustest runs a real NATS server with JetStream for tests, and opens
// buses on it.
//
//	srv := bustest.RunServer(t)
//	b := srv.Open(t) // closed by t.Cleanup
//
// The server listens on 127.0.0.1 at a random port and stores in a
// t.TempDir(); Shutdown and Restart let a test take JetStream away and bring
// it back with its state.
package bustest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
)

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 30 * time.Second

// Server is a NATS server with JetStream, shut down by t.Cleanup.
type Server struct {
	storeDir string

	mu   sync.Mutex
	srv  *server.Server
	port int
}

// RunServer starts a NATS server with JetStream on 127.0.0.1 at a random port,
// storing in a temporary directory. It is shut down when the test ends.
func RunServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{storeDir: t.TempDir()}
	srv, err := start(s.storeDir, server.RANDOM_PORT)
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	s.srv = srv
	s.port = srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.Shutdown)
	return s
}

func start(storeDir string, port int) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "bustest",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("new nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats server on port %d not ready after %v", port, startTimeout)
	}
	return srv, nil
}

// URL is the server's client URL, nats://127.0.0.1:<port>; it stays the same across Restart.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
}

// Shutdown stops the server and waits until it has stopped. Clients see a
// disconnect and keep trying to reconnect. Shutting down twice is harmless.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart shuts the server down if it runs, and starts it again on the same
// port with the same store, so streams, consumers and messages survive.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Shutdown()
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, err := start(s.storeDir, s.port)
	if err != nil {
		t.Fatalf("bustest: restart: %v", err)
	}
	s.srv = srv
}

// NATSServer is the running server, or nil after Shutdown.
func (s *Server) NATSServer() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Config is bus.DefaultConfig connected to this server.
func (s *Server) Config() bus.Config {
	cfg := bus.DefaultConfig()
	cfg.URLs = []string{s.URL()}
	cfg.Name = "bustest"
	return cfg
}

// Open opens a bus on this server with s.Config() and closes it when the
// test ends. The connection retries every 50ms after a disconnect, so a
// Restart is noticed quickly; opts may override this.
func (s *Server) Open(t testing.TB, opts ...bus.Option) *bus.Bus {
	t.Helper()
	return s.OpenConfig(t, s.Config(), opts...)
}

// OpenConfig is Open with cfg, for tests of the bus configuration. cfg.URLs
// should name this server (start from s.Config()).
func (s *Server) OpenConfig(t testing.TB, cfg bus.Config, opts ...bus.Option) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	opts = append([]bus.Option{bus.WithNATSOptions(nats.ReconnectWait(50 * time.Millisecond))}, opts...)
	b, err := bus.Open(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("bustest: open bus: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("bustest: close bus: %v", err)
		}
	})
	return b
}

// KV runs a server, opens a bus on it and creates the bucket cfg
// describes: for tests of code that keeps its state in one bucket.
func KV(t testing.TB, cfg jetstream.KeyValueConfig) jetstream.KeyValue {
	t.Helper()
	b := RunServer(t).Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	kv, err := b.JetStream().CreateKeyValue(ctx, cfg)
	if err != nil {
		t.Fatalf("bustest: create bucket %s: %v", cfg.Bucket, err)
	}
	return kv
}
