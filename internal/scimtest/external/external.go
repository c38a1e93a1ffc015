// Package external starts, for tests, a SCIM 2.0 server iamflow did not
// write: SCIMMY's protocol engine behind its Express routers, installed from
// npm by scripts/external-scim/install.sh and run as its own node process
// (scripts/external-scim/README.md says what it is and how it behaves).
//
//	srv := external.Start(t)
//	cfg.URL, cfg.SCIMPath = srv.URL, srv.Path
//	cfg.Auth, cfg.StaticToken = identitydomain.AuthStatic, srv.TokenRef(t)
//
// When the server is not installed (or node is missing) the test is skipped
// with a message saying how to install it, unless IAMFLOW_REQUIRE_EXTERNAL_SCIM
// is 1 (CI sets it), when it fails. Nothing here is used by production code.
package external

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/testutil"
)

// RequireEnv is the variable that turns a missing installation into a
// failure instead of a skip.
const RequireEnv = "IAMFLOW_REQUIRE_EXTERNAL_SCIM"

// Server is a running external SCIM server.
type Server struct {
	// URL is where it listens, http://127.0.0.1:PORT.
	URL string
	// Path is the SCIM base path under URL, /scim/v2.
	Path string
	// Token is the bearer token it accepts (and nothing else).
	Token string
}

// Base returns URL and Path joined: the SCIM base URL.
func (s *Server) Base() string { return s.URL + s.Path }

// TokenRef writes the token to a file in a test directory and returns a
// secret reference to it (file:...), for identitydomain.Config.StaticToken.
func (s *Server) TokenRef(t testing.TB) secret.Ref {
	t.Helper()
	p := filepath.Join(t.TempDir(), "external-scim-token")
	if err := os.WriteFile(p, []byte(s.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref("file:" + p)
}

// Dir returns the directory of the server's files, scripts/external-scim in
// the module, found from the working directory upwards.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "scripts", "external-scim"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod above " + wd)
		}
	}
}

// unavailable skips or fails the test, as RequireEnv says.
func unavailable(t testing.TB, why string) {
	t.Helper()
	msg := "external SCIM server unavailable: " + why + "; install it with scripts/external-scim/install.sh (needs node and npm)"
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(msg + " (" + RequireEnv + "=1)")
	}
	t.Skip(msg)
}

// Start starts a fresh server (empty directory) on a port the system picks,
// waits until it answers, and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir, node := locate(t)
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		t.Fatal(err)
	}
	srv := &Server{Token: hex.EncodeToString(tok[:])}
	stdout, exited, stderr := run(t, node, dir, srv.Token)
	srv.URL, srv.Path = awaitAddress(t, stdout, exited, stderr)

	// Listening is not answering: poll until it does.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := srv.ping()
		if err == nil {
			return srv
		}
		if time.Now().After(deadline) {
			t.Fatalf("external SCIM server at %s not ready after 30s: %v\n%s", srv.Base(), err, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// locate finds the installed server and node, or skips (or fails, see
// unavailable) the test.
func locate(t testing.TB) (dir, node string) {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		unavailable(t, err.Error())
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".iamflow-lock")); err != nil {
		unavailable(t, "not installed in "+dir)
	}
	node, err = exec.LookPath("node")
	if err != nil {
		unavailable(t, "node not found")
	}
	return dir, node
}

// run starts the server on a free port, stopped when the test ends (its
// stderr logged if the test failed). exited gets its end.
func run(t testing.TB, node, dir, token string) (stdout io.Reader, exited <-chan error, stderr *testutil.SyncBuffer) {
	t.Helper()
	cmd := exec.Command(node, "server.mjs", "0")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "IAMFLOW_SCIM_TOKEN="+token)
	stdin, err := cmd.StdinPipe() // its end (our exit included) stops the server
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = &testutil.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the external SCIM server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("external SCIM server stderr:\n%s", stderr)
		}
	})
	return out, done, stderr
}

// awaitAddress reads where the server listens from the first line of its
// output.
func awaitAddress(t testing.TB, stdout io.Reader, exited <-chan error, stderr *testutil.SyncBuffer) (url, base string) {
	t.Helper()
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
	}()
	var ready struct {
		URL  string `json:"url"`
		Base string `json:"base"`
	}
	select {
	case line := <-lines:
		if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.URL == "" {
			t.Fatalf("external SCIM server said %q, want its address (stderr: %s)", line, stderr)
		}
	case err := <-exited:
		t.Fatalf("external SCIM server exited: %v\n%s", err, stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("external SCIM server did not say where it listens within 60s\n%s", stderr)
	}
	return ready.URL, ready.Base
}

// ping GETs /ServiceProviderConfig.
func (s *Server) ping() error {
	req, err := http.NewRequest(http.MethodGet, s.Base()+"/ServiceProviderConfig", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
