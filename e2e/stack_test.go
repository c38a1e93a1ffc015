//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildBinaries builds iamflow and the module's own nats-server into dir.
func buildBinaries(t *proofT, dir string) (iamflow, natsServer string) {
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

// waitFor polls fn every sleep until it returns nil or total has passed, and
// returns fn's last error then; an errStop ends it at once. Unlike testutil.CheckFor it does not fail the
// test, so callers can report what did not happen and go on.
func waitFor(total, sleep time.Duration, fn func() error) error {
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if stop, ok := err.(errStop); ok {
			return stop.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %v: %w", total, err)
		}
		time.Sleep(sleep)
	}
}

// httpOK is a readiness probe: GET url answers 200.
func httpOK(url string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// proc is one child process. Nothing restarts it behind the test's back: the
// test kills and starts it on purpose, and an exit the test did not cause
// is an error of the proof (with the process's last log lines).
type proc struct {
	t       *proofT
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{}
	logFrom    int64 // where the current start's output begins in the log
	expectExit bool  // the test is stopping or killing it
	closed     bool  // the test is over
	starts     int
	crashes    []string // exits nobody asked for
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
	fi, err := logf.Stat()
	if err != nil {
		logf.Close()
		return err
	}
	p.logFrom = fi.Size()
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
		unexpected := !p.expectExit && !p.closed
		if unexpected {
			p.crashes = append(p.crashes, fmt.Sprintf("at %s: %v", time.Now().Format("15:04:05.000"), err))
		}
		p.mu.Unlock()
		close(done)
		if unexpected {
			p.t.Errorf("%s exited on its own (%v); nothing restarts it. Last lines of its log:\n%s", p.name, err, p.tail(20))
		}
	}()
	return nil
}

// pid is the running process's id.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
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

// stats reports how often the process was started and the exits nobody
// asked for.
func (p *proc) stats() (starts int, crashes []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, append([]string(nil), p.crashes...)
}

// fromLog waits until a line the current start wrote satisfies match, and
// returns what match extracted: this is how the test learns the addresses a
// process bound (port 0) from the lines it prints.
func (p *proc) fromLog(total time.Duration, what string, match func(line string) (string, bool)) (string, error) {
	var found string
	err := waitFor(total, 20*time.Millisecond, func() error {
		p.mu.Lock()
		from := p.logFrom
		p.mu.Unlock()
		f, err := os.Open(p.logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if v, ok := match(sc.Text()); ok {
				found = v
				return nil
			}
		}
		return fmt.Errorf("%s has not logged %s yet", p.name, what)
	})
	if err != nil {
		return "", fmt.Errorf("%w\n%s", err, p.tail(20))
	}
	return found, nil
}

// jsonLine decodes a JSON log line (iamflow serve logs JSON), or nil.
func jsonLine(line string) map[string]any {
	if !strings.HasPrefix(line, "{") {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(line), &m) != nil {
		return nil
	}
	return m
}

// adminAddrs extracts the admin server's bound addresses from its
// "admin: serving" log line: "grpc_addr http_addr".
func adminAddrs(line string) (string, bool) {
	m := jsonLine(line)
	g, ok1 := m["grpc_addr"].(string)
	h, ok2 := m["http_addr"].(string)
	return g + " " + h, ok1 && ok2
}

// ingestAddr extracts the webhook's bound address from "ingest listening".
func ingestAddr(line string) (string, bool) {
	m := jsonLine(line)
	a, ok := m["addr"].(string)
	return a, ok && m["msg"] == "ingest listening"
}

// natsListeners are the addresses a nats-server bound.
type natsListeners struct {
	client, monitor, cluster string // host:port, http://host:port, host:port ("" when not clustered)
}

// natsPorts reads the ports file nats-server writes (--ports_file_dir) for
// the process pid: its client, monitoring and (when clustered) route
// listeners.
func natsPorts(dir, bin string, pid int, clustered bool) (natsListeners, error) {
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s_%d.ports", filepath.Base(bin), pid)))
	if err != nil {
		return natsListeners{}, err
	}
	var ports struct {
		Nats       []string `json:"nats"`
		Monitoring []string `json:"monitoring"`
		Cluster    []string `json:"cluster"`
	}
	if err := json.Unmarshal(b, &ports); err != nil {
		return natsListeners{}, fmt.Errorf("ports file: %w", err)
	}
	if len(ports.Nats) == 0 || len(ports.Monitoring) == 0 || (clustered && len(ports.Cluster) == 0) {
		return natsListeners{}, fmt.Errorf("ports file %s lists no client, monitoring or cluster port", b)
	}
	l := natsListeners{client: strings.TrimPrefix(ports.Nats[0], "nats://"), monitor: ports.Monitoring[0]}
	if clustered {
		l.cluster = strings.TrimPrefix(ports.Cluster[0], "nats://")
	}
	return l, nil
}
