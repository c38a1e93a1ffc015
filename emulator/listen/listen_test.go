package listen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
)

// TestLifecycle: a server serves once started, says where, closes even with
// a connection that never sent a request (a transport's spare), closes
// twice without error and does not start again.
func TestLifecycle(t *testing.T) {
	s := New("test", "emulator")
	if s.URL() != "" {
		t.Fatalf("URL before Start = %q", s.URL())
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	url, err := s.Start("127.0.0.1:0", h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if url != s.URL() || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("Start answered %q, URL %q", url, s.URL())
	}
	if _, err := s.Start("127.0.0.1:0", h, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("second Start: %v", err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q", body)
	}
	spare, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer spare.Close()
	testutil.CheckFor(t, 5*time.Second, time.Millisecond, func() error { // the server has accepted it
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, st := range s.conns {
			if st == http.StateNew {
				return nil
			}
		}
		return errors.New("no new connection yet")
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n, err := spare.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the spare connection is still open (read %d bytes)", n)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Start("127.0.0.1:0", h, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "test: start: emulator is closed") {
		t.Fatalf("Start after Close: %v", err)
	}
}

// fakeEmulator records Run's calls.
type fakeEmulator struct {
	startErr error
	calls    []string
}

func (f *fakeEmulator) Start(addr string) error {
	f.calls = append(f.calls, "start "+addr)
	return f.startErr
}

func (f *fakeEmulator) Close() error {
	f.calls = append(f.calls, "close")
	return nil
}

func TestRunStartsServesUntilCancelledAndCloses(t *testing.T) {
	f := &fakeEmulator{}
	ctx, cancel := context.WithCancel(context.Background())
	err := Run(ctx, f, "127.0.0.1:0", func() {
		f.calls = append(f.calls, "ready")
		cancel()
	})
	if err != nil || !slices.Equal(f.calls, []string{"start 127.0.0.1:0", "ready", "close"}) {
		t.Fatalf("calls %v, err %v", f.calls, err)
	}

	bad := &fakeEmulator{startErr: errors.New("address in use")}
	err = Run(context.Background(), bad, "127.0.0.1:1", func() { t.Error("ready called after a failed start") })
	if err == nil || err.Error() != "address in use" || !slices.Equal(bad.calls, []string{"start 127.0.0.1:1", "close"}) {
		t.Fatalf("failed start: calls %v, err %v", bad.calls, err)
	}
}
