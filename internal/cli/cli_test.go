package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
)

// startDev runs `iamflow dev` on random ports with extra flags until the
// test ends, then checks it stopped cleanly; it returns what dev writes.
func startDev(t *testing.T, extra ...string) (out, errOut *testutil.SyncBuffer) {
	t.Helper()
	t.Setenv("IAMFLOW_INGEST_LISTEN", "127.0.0.1:0")
	t.Setenv("IAMFLOW_ADMIN_GRPC_ADDR", "127.0.0.1:0")
	t.Setenv("IAMFLOW_ADMIN_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("IAMFLOW_NATS_EMBEDDED_PORT", "-1")
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut = &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	exited := make(chan int, 1)
	args := append([]string{"dev", "--source-addr", "127.0.0.1:0", "--target-addr", "127.0.0.1:0", "--ords-addr", "127.0.0.1:0"}, extra...)
	go func() { exited <- Run(ctx, args, out, errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("dev exited %d: %s", code, errOut.String())
			}
			if !strings.HasSuffix(out.String(), "iamflow dev stopped.\n") {
				t.Errorf("dev did not say it stopped:\n%s", out.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("dev did not stop within 30s of cancellation")
		}
	})
	return out, errOut
}

// scimCreate POSTs the SCIM resource body to url with token and fails the
// test, naming what, unless it is created (201).
func scimCreate(t *testing.T, url, token, body, what string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	code, err := testutil.DoJSON(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusCreated {
		t.Fatalf("%s: %d", what, code)
	}
}

// findsOne is nil when the SCIM listing at url (a filter by a unique name),
// read with token, answers exactly one resource; what names it in the error.
func findsOne(url, token, what string) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var list struct {
		TotalResults int `json:"totalResults"`
	}
	if _, err := testutil.DoJSON(req, &list); err != nil || list.TotalResults != 1 {
		return fmt.Errorf("%s not in the target yet: %d results, %v", what, list.TotalResults, err)
	}
	return nil
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelp(t *testing.T) {
	code, out, _ := run(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"serve", "dev", "config", "status", "version"} {
		if !strings.Contains(out, "  "+want) {
			t.Errorf("help does not list %s:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "help", "serve")
	if code != 0 || !strings.Contains(out, "monolithic mode") || !strings.Contains(out, "-config") {
		t.Errorf("help serve: %d\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"nope"}, {"serve"}, {"serve", "--bogus"}, {"config"}} {
		code, _, stderr := run(t, args...)
		if code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
	code, _, stderr := run(t, "serve", "--config", "/nonexistent.yaml", "ingest")
	if code != 1 || !strings.Contains(stderr, "nonexistent.yaml") {
		t.Errorf("missing config file: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, "serve", "replicatorr")
	if code != 1 || !strings.Contains(stderr, `unknown service "replicatorr"`) {
		t.Errorf("unknown service: exit %d, %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "iamflow ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestConfigCheck(t *testing.T) {
	// The example's secrets, as an operator would export them.
	for _, v := range []string{"IAMFLOW_ADMIN_TOKEN", "IAMFLOW_HUB_CLIENT_SECRET", "IAMFLOW_SPOKE_EU_CLIENT_SECRET", "IAMFLOW_WEBHOOK_PASSWORD"} {
		t.Setenv(v, "example-"+strings.ToLower(v)+"-0123456789")
	}
	t.Setenv("IAMFLOW_ACCESS_WEBHOOK_URL", "https://hooks.example.com/iamflow/0123456789")
	code, out, stderr := run(t, "config", "check", "--config", "../../deploy/iamflow.example.yaml")
	if code != 0 || !strings.Contains(out, "configuration ok") {
		t.Fatalf("example config: exit %d\n%s%s", code, out, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("domains:\n  - name: Bad Name\n    oci_name: X\ningest:\n  password: hunter2\n"), 0o600)
	code, _, stderr = run(t, "config", "check", "--config", bad)
	if code != 1 || !strings.Contains(stderr, "domains[0].name") || !strings.Contains(stderr, "ingest.password") || strings.Contains(stderr, "hunter2") {
		t.Fatalf("bad config: exit %d\n%s", code, stderr)
	}
	code, out, _ = run(t, "config", "check", "--env")
	if code != 0 || !strings.Contains(out, "IAMFLOW_NATS_URLS") {
		t.Fatalf("--env: exit %d\n%s", code, out)
	}
}

// TestDevAsANewUserWould runs `iamflow dev`, follows the banner's curl line,
// and checks what the README promises: 202, the event counted in status, 400
// for a malformed body, 401 for a wrong password.
func TestDevAsANewUserWould(t *testing.T) {
	out, _ := startDev(t)
	curlRE := regexp.MustCompile(`curl -sS -u '([^:]+):([^']+)' -H 'Content-Type: application/json' (\S+) -d '(.+)'`)
	var m []string
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if m = curlRE.FindStringSubmatch(out.String()); m == nil {
			return io.ErrNoProgress
		}
		return nil
	})
	user, pass, url, body := m[1], m[2], m[3], m[4]
	post := func(u, p, b string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(b))
		req.SetBasicAuth(u, p)
		req.Header.Set("Content-Type", "application/json")
		var v map[string]any
		code, err := testutil.DoJSON(req, &v)
		if code == 0 {
			t.Fatal(err)
		}
		return code, v
	}
	if code, v := post(user, pass, body); code != http.StatusAccepted || v["published"] != 1.0 {
		t.Fatalf("sample event: %d %v\n%s", code, v, out.String())
	}
	if code, v := post(user, pass, body); code != http.StatusAccepted || v["duplicates"] != 1.0 {
		t.Fatalf("sample event again: %d %v", code, v)
	}
	if code, v := post(user, pass, `{"eventType": nope}`); code != http.StatusBadRequest || v["message"] == "" {
		t.Fatalf("malformed body: %d %v", code, v)
	}
	if code, _ := post(user, "wrong", body); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	grpcAddr := regexp.MustCompile(`admin +gRPC (\S+)`).FindStringSubmatch(out.String())
	if grpcAddr == nil {
		t.Fatalf("banner has no admin address:\n%s", out.String())
	}
	code, status, stderr := run(t, "status", "--addr", grpcAddr[1])
	if code != 0 || !strings.Contains(status, "ingest") || !strings.Contains(status, "running") ||
		!strings.Contains(status, "published=1") || !strings.Contains(status, "duplicates=1") || !strings.Contains(status, "rejected=1") {
		t.Fatalf("status: exit %d\n%s%s", code, status, stderr)
	}
	// A change in the emulated source domain reaches ingest as an OCI event.
	emu := regexp.MustCompile(`OAuth client: id "([^"]+)" secret "([^"]+)"\):\s+src\s+(\S+)`).FindStringSubmatch(out.String())
	if emu == nil {
		t.Fatalf("banner has no emulated source domain:\n%s", out.String())
	}
	token := scimToken(t, emu[3], emu[1], emu[2])
	scimCreate(t, emu[3]+"/admin/v1/Groups", token, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Developers"}`,
		"create group in the emulated source")
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, status, _ := run(t, "status", "--addr", grpcAddr[1])
		if !strings.Contains(status, "published=2") {
			return fmt.Errorf("the group's event is not published yet:\n%s", status)
		}
		return nil
	})

	// ... and the replicator copies it into the emulated target.
	tgt := regexp.MustCompile(`\stgt\s+(http://\S+)`).FindStringSubmatch(out.String())
	if tgt == nil {
		t.Fatalf("banner has no emulated target domain:\n%s", out.String())
	}
	tgtToken := scimToken(t, tgt[1], emu[1], emu[2])
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		return findsOne(tgt[1]+`/admin/v1/Groups?filter=displayName+eq+%22Developers%22`, tgtToken, "group")
	})
	// The banner's reconcile line: a dry run finds the link in sync.
	rec := regexp.MustCompile(`iamflow (reconcile \S+ --dry-run --addr \S+)`).FindStringSubmatch(out.String())
	if rec == nil {
		t.Fatalf("banner has no reconcile line:\n%s", out.String())
	}
	code, plan, stderr := run(t, strings.Fields(rec[1])...)
	if code != 0 || !strings.Contains(plan, "dev src -> tgt: plan (dry run, nothing changed)") || !strings.Contains(plan, "in sync") {
		t.Fatalf("reconcile --dry-run: exit %d\n%s%s", code, plan, stderr)
	}
	// --json prints the same answer as the API's JSON.
	code, plan, stderr = run(t, append(strings.Fields(rec[1]), "--json")...)
	var planJSON struct {
		Reports []struct {
			Source string `json:"source"`
			DryRun bool   `json:"dryRun"`
		} `json:"reports"`
	}
	if err := json.Unmarshal([]byte(plan), &planJSON); code != 0 || err != nil || len(planJSON.Reports) == 0 || !planJSON.Reports[0].DryRun {
		t.Fatalf("reconcile --dry-run --json: exit %d, %v\n%s%s", code, err, plan, stderr)
	}

	// A member of "DB Users" in src gets an account in the emulated database.
	checkDevDatabase(t, out.String(), emu[3], token)
	// A user pushed over SCIM to the pushed source "idp" reaches tgt.
	checkDevPush(t, out.String(), tgt[1], tgtToken)

	restAddr := regexp.MustCompile(`REST (http://\S+/v1/status)`).FindStringSubmatch(out.String())
	resp, err := http.Get(restAddr[1])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"published"`) {
		t.Fatalf("REST status: %d %s", resp.StatusCode, b)
	}

	// Everything the newcomer did was done: once every consumer has settled,
	// nothing is dead-lettered ...
	testutil.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		_, status, _ := run(t, "status", "--addr", grpcAddr[1])
		consumers := regexp.MustCompile(`(?m)^\S+ consumer .*$`).FindAllString(status, -1)
		if len(consumers) < 4 {
			return fmt.Errorf("want the consumers of replicator, capabilities, dbprovisioner and expiry:\n%s", status)
		}
		for _, c := range consumers {
			if !strings.Contains(c, " ack_pending=0 pending=0 ") {
				return fmt.Errorf("not settled: %s", c)
			}
		}
		if dl := regexp.MustCompile(`dead_lettered=[1-9]`).FindString(status); dl != "" || strings.Contains(out.String(), "DEAD LETTER") {
			t.Fatalf("something was dead-lettered:\n%s\n%s", status, out.String())
		}
		return nil
	})
	// ... and dev printed one line per change as it flowed.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`ingest +received user\.created jane\.doe@example\.com from src`),
		regexp.MustCompile(`replicator +create_group Developers in tgt, \d+(\.\d+)?m?s after it was received`),
		regexp.MustCompile(`replicator +create_group OCI-Temp-Admins in tgt`), // dev's first full reconcile
		regexp.MustCompile(`dbprovisioner +create_user DANA@EXAMPLE\.COM .*in devdb`),
		regexp.MustCompile(`replicator +add_member DB Users for dana@example\.com in tgt`), // the member by name
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("no flow line matching %s:\n%s", want, out.String())
		}
	}
}

// scimToken gets an access token from an (emulated) identity domain.
func scimToken(t *testing.T, domainURL, id, secret string) string {
	t.Helper()
	return testutil.ClientCredentialsToken(t, domainURL, id, secret)
}

func TestEmulateIdentityDomains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testutil.SyncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- Run(ctx, []string{"emulate", "identity-domain", "--addr", "127.0.0.1:0", "--generate", "20,3,30", "a", "b"}, &out, &errOut)
	}()
	var m [][]string
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "OAuth client") {
			return io.ErrNoProgress
		}
		m = regexp.MustCompile(`identity domain (\S+) +(http://\S+) .*20 users, 3 groups`).FindAllStringSubmatch(out.String(), -1)
		return nil
	})
	if len(m) != 2 || m[0][1] != "a" || m[1][1] != "b" || m[0][2] == m[1][2] {
		t.Fatalf("domains: %v\n%s", m, out.String())
	}
	cred := regexp.MustCompile(`id "([^"]+)" secret "([^"]+)"`).FindStringSubmatch(out.String())
	scimToken(t, m[1][2], cred[1], cred[2])
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("emulate exited %d: %s", code, errOut.String())
	}
	if code, _, stderr := run(t, "emulate", "ldap"); code != 2 || !strings.Contains(stderr, "identity-domain") {
		t.Fatalf("unknown emulator: %d %s", code, stderr)
	}
}

// TestGrantThroughDev follows the banner of `iamflow dev`: its grant line
// works as printed (the seeded user, the temporary group dev configures),
// the grant expires on time, and a grant over the group's maximum is
// refused with the reason.
func TestGrantThroughDev(t *testing.T) {
	out, errOut := startDev(t)
	grantRE := regexp.MustCompile(`go run ./cmd/iamflow (grant add .*)\n`)
	listRE := regexp.MustCompile(`go run ./cmd/iamflow (grant list .*)\n`)
	var add, list []string
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		add, list = grantRE.FindStringSubmatch(out.String()), listRE.FindStringSubmatch(out.String())
		if add == nil || list == nil {
			return fmt.Errorf("no grant lines in the banner yet; stderr: %s", errOut.String())
		}
		return nil
	})
	args := shellFields(t, add[1])
	if i := slices.Index(args, "--for"); i < 0 || args[i+1] != "2m" {
		t.Fatalf("banner grant line without --for 2m: %q", add[1])
	} else {
		args[i+1] = "2s" // the same grant, over sooner
	}
	code, stdout, stderr := run(t, args...)
	if code != 0 || !strings.Contains(stdout, "jane.doe@example.com") || !strings.Contains(stdout, "Temp-Admins") {
		t.Fatalf("banner's grant add: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = run(t, shellFields(t, list[1])...)
	if code != 0 || !strings.Contains(stdout, "jane.doe@example.com") || !strings.Contains(stdout, "active") {
		t.Fatalf("banner's grant list: exit %d\n%s", code, stdout)
	}
	testutil.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		_, stdout, _ := run(t, append(shellFields(t, list[1]), "--state", "expired")...)
		if !strings.Contains(stdout, "jane.doe@example.com") {
			return fmt.Errorf("not expired yet:\n%s", stdout)
		}
		return nil
	})
	i := slices.Index(args, "--for")
	args[i+1] = "9h"
	code, _, stderr = run(t, args...)
	if code == 0 || !strings.Contains(stderr, "max_duration") {
		t.Fatalf("grant over the maximum: exit %d, %s", code, stderr)
	}
}

// shellFields splits a command line the banner prints as a shell would:
// on spaces, with double-quoted arguments kept whole.
func shellFields(t *testing.T, line string) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`"([^"]*)"|(\S+)`).FindAllStringSubmatch(line, -1) {
		if m[2] != "" {
			out = append(out, m[2])
		} else {
			out = append(out, m[1])
		}
	}
	return out
}
