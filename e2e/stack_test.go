//go:build linux

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinaries builds iamflow and the module's own nats-server into dir.
func buildBinaries(t *testing.T, dir string) (iamflow, natsServer string) {
	t.Helper()
	iamflow, natsServer = filepath.Join(dir, "iamflow"), filepath.Join(dir, "nats-server")
	for _, b := range []struct{ out, pkg string }{
		{iamflow, "github.com/iamflow/iamflow/cmd/iamflow"},
		{natsServer, "github.com/nats-io/nats-server/v2"},
	} {
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
		t.Logf("built %s in %v", b.pkg, time.Since(start).Round(time.Millisecond))
	}
	return iamflow, natsServer
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int { return freePortOn(t, "127.0.0.1") }

// freePortOn returns a port on host that was free a moment ago.
func freePortOn(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls fn every sleep until it returns nil or total has passed, and
// returns fn's last error then. Unlike testutil.CheckFor it does not fail the
// test, so callers can report what did not happen and go on.
func waitFor(total, sleep time.Duration, fn func() error) error {
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %v: %w", total, err)
		}
		time.Sleep(sleep)
	}
}

// httpOK is a readiness probe: GET url answers 200.
func httpOK(url string) func() error {
	c := &http.Client{Timeout: 2 * time.Second}
	return func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// proc is one supervised child process. Like compose's restart policy, the
// supervisor starts it again when it exits on its own; the test kills it
// with SIGKILL and restarts it on purpose.
type proc struct {
	t       *testing.T
	name    string
	bin     string
	args    []string
	env     []string
	ready   func() error
	logPath string

	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{}
	expectExit bool // the test is stopping or killing it
	closed     bool // the test is over: no more restarts
	starts     int
	crashes    int // exits nobody asked for
	lastExit   string
}

// start starts the process; it does not wait for readiness.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("closed")
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n===== start #%d at %s: %s %s\n", p.starts+1, time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The child dies with the test binary (a test timeout skips Cleanup).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.starts++
	p.cmd, p.expectExit = cmd, false
	done := make(chan struct{})
	p.done = done
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.lastExit = fmt.Sprint(err)
		restart := !p.expectExit && !p.closed
		if restart {
			p.crashes++
		}
		p.mu.Unlock()
		close(done)
		if restart {
			p.t.Logf("%s exited on its own (%v); the supervisor restarts it", p.name, err)
			time.Sleep(time.Second) // restart back-off, as a supervisor would
			if err := p.start(); err != nil {
				p.t.Logf("%s: restart: %v", p.name, err)
			}
		}
	}()
	return nil
}

// waitReady polls the readiness probe.
func (p *proc) waitReady(total time.Duration) error {
	if p.ready == nil {
		return nil
	}
	if err := waitFor(total, 50*time.Millisecond, p.ready); err != nil {
		return fmt.Errorf("%s not ready: %w", p.name, err)
	}
	return nil
}

// signal sends sig and waits for the process to exit, up to wait; then
// SIGKILL.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.expectExit = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

// stop ends the process for good: SIGTERM, then SIGKILL after 10s.
func (p *proc) stop() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.signal(syscall.SIGTERM, 10*time.Second)
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 4*n {
			lines = lines[len(lines)-n:]
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stats reports how often the process was started and crashed.
func (p *proc) stats() (starts, crashes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, p.crashes
}
