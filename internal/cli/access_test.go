package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/oidc/oidctest"
	"github.com/iamflow/iamflow/internal/testutil"
)

// TestAccessRequestsThroughDev is the access workflow as the banner of
// `iamflow dev` teaches it: a developer logs in and asks for
// OCI-Temp-Admins, an approver sees and approves it, the membership appears
// in src and in tgt, the notifications reach the emulated OCI Notifications,
// and the membership is gone at the deadline; the on-call user is approved
// at once; an ineligible group, a duration over the maximum, a missing
// ticket, a self-approval, a forged and an expired login are each refused
// with a clear error.
func TestAccessRequestsThroughDev(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "login.json")
	t.Setenv("IAMFLOW_LOGIN_CACHE", cache)
	out, errOut := startDev(t, "--notifications-addr", "127.0.0.1:0")
	approveRE := regexp.MustCompile(`go run ./cmd/iamflow approve ID --addr (\S+)\n`)
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if approveRE.FindStringSubmatch(out.String()) == nil {
			return fmt.Errorf("no access lines in the banner yet; stderr: %s", errOut.String())
		}
		return nil
	})
	banner := out.String()
	addr := approveRE.FindStringSubmatch(banner)[1]
	passwords := map[string]string{}
	for _, m := range regexp.MustCompile(`(\S+@example\.com) +password (\S+)`).FindAllStringSubmatch(banner, -1) {
		passwords[m[1]] = m[2]
	}
	login := regexp.MustCompile(`go run ./cmd/iamflow (login --domain-url \S+ --client-id \S+)`).FindStringSubmatch(banner)
	requestLine := regexp.MustCompile(`go run ./cmd/iamflow (request OCI-Temp-Admins .*)\n`).FindStringSubmatch(banner)
	messagesURL := regexp.MustCompile(`(http://\S+/_emulator/messages)`).FindStringSubmatch(banner)
	emu := regexp.MustCompile(`OAuth client: id "([^"]+)" secret "([^"]+)"\):\s+src\s+(\S+)\s.*\n\s+tgt\s+(\S+)`).FindStringSubmatch(banner)
	if len(passwords) < 3 || login == nil || requestLine == nil || messagesURL == nil || emu == nil {
		t.Fatalf("banner lacks the people, the login, request or messages lines:\n%s", banner)
	}
	loginAs := func(user string) {
		t.Helper()
		dev := context.Background()
		var lout testutil.SyncBuffer
		done := make(chan int, 1)
		go func() { done <- Run(dev, append(shellFields(t, login[1]), "--timeout", "30s"), &lout, &lout) }()
		urlRE := regexp.MustCompile(`\n  (http://\S+/oauth2/v1/authorize\S+)\n`)
		var authURL string
		testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if m := urlRE.FindStringSubmatch(lout.String()); m != nil {
				authURL = m[1]
				return nil
			}
			return fmt.Errorf("login printed no URL:\n%s", lout.String())
		})
		back, err := oidctest.Login(dev, nil, authURL, user, passwords[user])
		if err != nil {
			t.Fatal(err)
		}
		if code, _, err := oidctest.Follow(dev, nil, back); err != nil || code != 200 {
			t.Fatalf("login's redirect: %d %v", code, err)
		}
		if code := <-done; code != 0 || !strings.Contains(lout.String(), "Logged in as "+user) {
			t.Fatalf("login as %s: exit %d\n%s", user, code, lout.String())
		}
	}
	iamflow := func(args ...string) (int, string, string) {
		t.Helper()
		return run(t, append(args, "--addr", addr)...)
	}
	refused := func(want string, args ...string) {
		t.Helper()
		code, stdout, stderr := iamflow(args...)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("iamflow %s: exit %d, want 1 with %q\n%s%s", strings.Join(args, " "), code, want, stdout, stderr)
		}
	}

	// The requester, with the banner's request line (a shorter grant).
	loginAs(devRequester)
	code, stdout, stderr := iamflow("request")
	if code != 0 || !strings.Contains(stdout, "OCI-Temp-Admins") || !strings.Contains(stdout, "--ticket INC-[0-9]+") {
		t.Fatalf("what rita may request: exit %d\n%s%s", code, stdout, stderr)
	}
	refused("no access policy names it", "request", "Access-Approvers", "--reason", "r", "--ticket", "INC-1")
	refused("longer than the 2h0m0s", "request", "OCI-Temp-Admins", "--for", "3h", "--reason", "r", "--ticket", "INC-1")
	refused("needs a ticket reference", "request", "OCI-Temp-Admins", "--for", "1m", "--reason", "r")
	refused("does not match", "request", "OCI-Temp-Admins", "--for", "1m", "--reason", "r", "--ticket", "JIRA-9")
	args := shellFields(t, requestLine[1])
	i := slices.Index(args, "--for")
	if i < 0 || args[i+1] != "2m" {
		t.Fatalf("banner's request line without --for 2m: %q", requestLine[1])
	}
	args[i+1] = "4s"
	code, stdout, stderr = run(t, args...)
	idm := regexp.MustCompile(`Request (\w+) for OCI-Temp-Admins is waiting for approval \(0 of 1\)`).FindStringSubmatch(stdout)
	if code != 0 || idm == nil {
		t.Fatalf("banner's request: exit %d\n%s%s", code, stdout, stderr)
	}
	id := idm[1]
	refused("may not decide their own request", "approve", id)

	// The approver sees it, may not approve a request of their own, and
	// approves rita's.
	loginAs(devApprover)
	if code, stdout, _ := iamflow("requests", "--waiting"); code != 0 || !strings.Contains(stdout, id) || !strings.Contains(stdout, devRequester) {
		t.Fatalf("adam's waiting requests: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = iamflow("request", "OCI-Temp-Admins", "--for", "1m", "--reason", "INC-2 too", "--ticket", "INC-2")
	own := regexp.MustCompile(`Request (\w+) for`).FindStringSubmatch(stdout)
	if code != 0 || own == nil {
		t.Fatalf("adam's own request: exit %d\n%s", code, stdout)
	}
	refused("may not decide their own request", "approve", own[1])
	if code, stdout, stderr := iamflow("cancel", own[1]); code != 0 || !strings.Contains(stdout, "cancelled") {
		t.Fatalf("adam cancels his request: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = iamflow("approve", id, "--reason", "for the incident")
	if code != 0 || !strings.Contains(stdout, "Granted: "+devRequester+" is a member of OCI-Temp-Admins in src") {
		t.Fatalf("approve: exit %d\n%s%s", code, stdout, stderr)
	}
	refused("is active", "deny", id, "--reason", "too late")

	// The membership is in src and reaches tgt; at the deadline it is gone
	// from both.
	src, tgt := emu[3], emu[4]
	srcToken, tgtToken := scimToken(t, src, emu[1], emu[2]), scimToken(t, tgt, emu[1], emu[2])
	member := func(base, token string) bool {
		t.Helper()
		q := url.Values{"filter": {`displayName eq "OCI-Temp-Admins"`}, "attributes": {"members"}}
		req, _ := http.NewRequest(http.MethodGet, base+"/admin/v1/Groups?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		var v struct {
			Resources []struct {
				Members []struct {
					Display string `json:"display"`
				} `json:"members"`
			}
		}
		if code, err := testutil.DoJSON(req, &v); code == 0 {
			t.Fatal(err)
		}
		for _, g := range v.Resources {
			for _, m := range g.Members {
				if strings.EqualFold(m.Display, devRequester) || m.Display == "Rita Requester" {
					return true
				}
			}
		}
		return false
	}
	// The grant lasts 4s: both polls begin at once.
	testutil.CheckFor(t, 4*time.Second, 20*time.Millisecond, func() error {
		if !member(src, srcToken) || !member(tgt, tgtToken) {
			return fmt.Errorf("rita in src: %v, in tgt: %v", member(src, srcToken), member(tgt, tgtToken))
		}
		return nil
	})
	testutil.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if member(src, srcToken) || member(tgt, tgtToken) {
			return fmt.Errorf("after the deadline rita in src: %v, in tgt: %v", member(src, srcToken), member(tgt, tgtToken))
		}
		return nil
	})
	testutil.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		titles := notificationTitles(t, messagesURL[1])
		for _, want := range []string{"requested", "approved", "active", "ends soon", "ended", "cancelled"} {
			if !slices.Contains(titles, "iamflow: access "+want) {
				return fmt.Errorf("no %q notification among %q", want, titles)
			}
		}
		return nil
	})
	if !regexp.MustCompile(`notify +published "iamflow: access approved"`).MatchString(out.String()) {
		t.Errorf("dev printed no notification line:\n%s", out.String())
	}

	// The on-call user is approved at once.
	loginAs(devOnCallUser)
	code, stdout, stderr = iamflow("request", "OCI-Temp-Admins", "--for", "1m", "--reason", "INC-3 paged", "--ticket", "INC-3")
	if code != 0 || !strings.Contains(stdout, "Granted: "+devOnCallUser) || !strings.Contains(stdout, "policy:auto_approve") {
		t.Fatalf("on-call request: exit %d\n%s%s", code, stdout, stderr)
	}

	// A forged login (rita's token with another user in it) and an expired
	// one are refused, and nothing is requested.
	kept, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	var c cachedLogin
	if err := json.Unmarshal(kept, &c); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(c.IDToken, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	claims = []byte(strings.ReplaceAll(string(claims), devOnCallUser, devApprover))
	forged := c
	forged.IDToken = parts[0] + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + parts[2]
	forged.User = devApprover
	writeCache := func(l cachedLogin) {
		b, _ := json.Marshal(l)
		if err := os.WriteFile(cache, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCache(forged)
	refused("refused your login", "requests", "--waiting")
	expired := c
	expired.Expiry = time.Now().Add(-time.Minute)
	writeCache(expired)
	refused("expired", "request", "OCI-Temp-Admins", "--for", "1m", "--reason", "r", "--ticket", "INC-4")
}

// notificationTitles reads the titles the emulated Notifications received.
func notificationTitles(t *testing.T, u string) []string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ms []struct {
		Title string `json:"title"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&ms)
	var out []string
	for _, m := range ms {
		out = append(out, m.Title)
	}
	return out
}
