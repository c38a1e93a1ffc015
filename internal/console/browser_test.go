package console_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	emords "github.com/iamflow/iamflow/emulator/ords"
	"github.com/iamflow/iamflow/internal/testutil"
)

// Environment of the browser tests.
const (
	// RequireChromiumEnv makes a missing Chromium fail the browser tests
	// instead of skipping them (.ci/run sets it).
	RequireChromiumEnv = "IAMFLOW_REQUIRE_CHROMIUM"
	// ChromiumEnv names the browser binary (default: chromium on PATH).
	ChromiumEnv = "IAMFLOW_CHROMIUM"
	// ScreenshotsEnv is a directory: the browser test then saves each
	// page at desktop and phone width there (make screenshots).
	ScreenshotsEnv = "IAMFLOW_CONSOLE_SCREENSHOTS"
)

// waitUI bounds each wait for the page to show something.
const waitUI = 30 * time.Second

func chromiumPath(t *testing.T) string {
	t.Helper()
	names := []string{os.Getenv(ChromiumEnv), "chromium", "chromium-browser", "google-chrome", "headless-shell"}
	for _, n := range names {
		if n == "" {
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := "no Chromium to drive the console with: install Debian's chromium (apt-get install chromium) or set " + ChromiumEnv
	if os.Getenv(RequireChromiumEnv) != "" {
		t.Fatal(msg + " (" + RequireChromiumEnv + " is set)")
	}
	t.Skip(msg)
	return ""
}

// browser is a headless Chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	// Starting Chromium on a loaded machine now and then fails with no
	// output at all (the process exits before it listens); a fresh start
	// then works, so it gets three tries, each with its own profile.
	var errs []error
	for range 3 {
		actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(opts, chromedp.UserDataDir(t.TempDir()))...)
		ctx, cancel := chromedp.NewContext(actx)
		if err := chromedp.Do(ctx); err != nil { // the first run starts the browser, without a deadline
			cancel()
			cancelA()
			errs = append(errs, err)
			t.Logf("start %s: %v", exe, err)
			continue
		}
		t.Cleanup(func() { cancel(); cancelA() })
		return &browser{t: t, ctx: ctx}
	}
	t.Fatalf("start %s: %v", exe, errors.Join(errs...))
	return nil
}

// run runs actions with a deadline.
func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitUI)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := tryEval[T](b, expr)
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// tryEval is eval for a poll: the error is returned, not fatal.
func tryEval[T any](b *browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, waitUI)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// cookies are the browser's cookies for url.
func (b *browser) cookies(url string) []*network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitUI)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		b.t.Fatalf("browser: cookies: %v", err)
	}
	return res.Cookies
}

// text is the visible text of the first element matching sel, "" if none.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q)||{}).innerText||""`, sel))
}

// waitText waits until the element sel shows text matching re.
func (b *browser) waitText(sel, re string) string {
	b.t.Helper()
	rx := regexp.MustCompile(re)
	var got string
	testutil.CheckFor(b.t, waitUI, 100*time.Millisecond, func() error {
		// The page may be navigating (a session ended elsewhere sends it
		// to sign-in): an evaluation it interrupted is tried again.
		var err error
		got, err = tryEval[string](b, fmt.Sprintf(`(document.querySelector(%q)||{}).innerText||""`, sel))
		if err != nil {
			return fmt.Errorf("%s: %w", sel, err)
		}
		if !rx.MatchString(got) {
			return fmt.Errorf("%s shows %q, want /%s/", sel, got, re)
		}
		return nil
	})
	return got
}

// html is the page's whole HTML as the browser has it now.
func (b *browser) html() string {
	b.t.Helper()
	return eval[string](b, `document.documentElement.outerHTML`)
}

// noSecret fails if a secret of the stack is in s.
func noSecret(t *testing.T, where, s string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s shows a secret (%s…)", where, sec[:8])
		}
	}
}

// shot saves the page at desktop and phone width when ScreenshotsEnv is set.
func (b *browser) shot(name string) {
	b.t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		return
	}
	eval[bool](b, `(document.getElementById('notices')||{remove(){}}).remove() || true`) // the pictures show the page, not the last toasts
	for _, v := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		emulate := chromedp.EmulateViewport(v.w, v.h)
		shoot := chromedp.FullScreenshot(100) // the whole page, as PNG
		if v.mobile {
			emulate = chromedp.EmulateViewport(v.w, v.h, chromedp.EmulateMobile, chromedp.EmulateScale(2))
			shoot = chromedp.CaptureScreenshot() // the first screen, as a phone shows it
		}
		b.run(emulate, chromedp.Sleep(300*time.Millisecond)) // lets the layout settle, for the picture only
		ctx, cancel := context.WithTimeout(b.ctx, waitUI)
		png, err := chromedp.Run(ctx, shoot)
		cancel()
		if err != nil {
			b.t.Fatalf("browser: screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s.png", name, v.suffix)), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.run(chromedp.EmulateViewport(1280, 900))
}

// step runs one step of a scenario; a failed step ends the scenario, since
// the next ones build on it.
func step(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		t.FailNow()
	}
}

// The console in a real browser against the whole of iamflow: sign in, see
// a replicated change arrive, approve a held deletion, extend a grant and
// watch it count down, replay a dead letter. Each step checks what the page
// shows and what changed behind it.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test runs the whole stack and Chromium")
	}
	b := newBrowser(t)
	s := newStack(t)
	if dir := os.Getenv(ScreenshotsEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()

	// Data the pages show: a user, the temporary group, the mapped group.
	janeID := s.createUser("jane.doe@example.com")
	s.createGroup(tempGroup)
	dbGroupID := s.createGroup(dbGroup)
	s.settled()

	step(t, "sign in", func(t *testing.T) {
		b.t = t
		b.run(chromedp.Navigate(s.base + "/"))
		b.waitText("h1", "iamflow")
		b.shot("signin")
		b.run(chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token-at-all"), chromedp.Submit(chromedp.CSS("#signin-form")))
		b.waitText("#signin-error", "not accepted")
		b.run(chromedp.SendKeys(chromedp.CSS("#token"), adminToken), chromedp.Submit(chromedp.CSS("#signin-form")))
		b.waitText("#who", `operator \(admin token\)`)
		b.waitText("#consumers", "replicator-tgt")
		if cookieJS := eval[string](b, `document.cookie`); cookieJS != "" {
			t.Errorf("scripts can read cookies %q; the session cookie must be HttpOnly", cookieJS)
		}
		cookies := b.cookies(s.base)
		if len(cookies) != 1 || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict || cookies[0].Expires <= 0 {
			t.Fatalf("cookies %+v: want one HttpOnly, SameSite=Strict session cookie that expires", cookies)
		}
		noSecret(t, "the overview", b.html())
	})

	step(t, "a replicated change appears on the overview", func(t *testing.T) {
		b.t = t
		b.run(chromedp.Navigate(s.base + "/#/overview"))
		b.waitText("#consumers", "replicator-tgt")
		s.createGroup("Console-Launch")
		got := b.waitText("#recent", "create_group[\\s\\S]*Console-Launch")
		if !strings.Contains(got, "applied") {
			t.Errorf("the change shows %q, want it applied", got)
		}
		if _, ok := s.tgt.GroupByName("Console-Launch"); !ok {
			t.Error("the overview shows the group replicated but tgt does not have it")
		}
		b.waitText(".freshness", `Updated (just now|\d+s ago)`)
		b.shot("overview")
	})

	step(t, "approve a held deletion", func(t *testing.T) {
		b.t = t
		for _, n := range []string{"Doomed-A", "Doomed-B", "Doomed-C"} {
			s.createGroup(n)
		}
		s.settled()
		// The source loses three groups without telling (its events are
		// dropped); the full reconcile started from the console finds them
		// and, beyond max_deletions 1, holds the deletions.
		if err := s.src.SetFaults(emu.Faults{DropEvents: 1}); err != nil {
			t.Fatal(err)
		}
		for _, g := range s.src.Groups() {
			if strings.HasPrefix(g.DisplayName, "Doomed-") {
				if _, err := s.admin.DeleteGroup(ctx, g.ID, ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.src.SetFaults(emu.Faults{}); err != nil {
			t.Fatal(err)
		}
		doomedInTgt := func() []string {
			var out []string
			for _, g := range s.tgt.Groups() {
				if strings.HasPrefix(g.DisplayName, "Doomed-") {
					out = append(out, g.DisplayName)
				}
			}
			return out
		}
		b.run(chromedp.Navigate(s.base + "/#/replication"))
		b.waitText("#holds", "No deletion is waiting")
		b.run(chromedp.Click(chromedp.CSS(`[data-link="main"] .actions button:not(.secondary)`)))
		b.waitText("#confirm", "Reconcile main now")
		b.run(chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.waitText("#notices", "Reconciled main")
		names := b.waitText("#holds [data-hold]", "^3 held in tgt")
		for _, n := range []string{"Doomed-A", "Doomed-B", "Doomed-C"} {
			if !strings.Contains(names, n) {
				t.Errorf("the hold does not list %s: %q", n, names)
			}
		}
		if left := doomedInTgt(); len(left) != 3 {
			t.Fatalf("before approval tgt has %v, want the three held groups", left)
		}
		b.shot("replication")
		b.run(chromedp.Click(chromedp.CSS("#holds [data-hold] button.danger")))
		dialog := b.waitText("#confirm", "Apply 3 deletions in tgt")
		for _, n := range regexp.MustCompile(`Doomed-[ABC]`).FindAllString(names, -1) {
			if !strings.Contains(dialog, n) {
				t.Errorf("the confirmation does not say it deletes %s: %q", n, dialog)
			}
		}
		b.run(chromedp.Click(chromedp.CSS("#confirm-ok")))
		if n := b.waitText("#notices", "Applied \\d+ deletions in tgt"); !strings.Contains(n, "Applied 3 deletions in tgt.") {
			t.Errorf("approving: %s", n)
		}
		b.waitText("#holds", "No deletion is waiting")
		testutil.CheckFor(t, waitUI, 50*time.Millisecond, func() error {
			if left := doomedInTgt(); len(left) > 0 {
				return fmt.Errorf("still in tgt: %v", left)
			}
			return nil
		})
		b.run(chromedp.SetValue(chromedp.CSS("#f-action"), "delete_group"), chromedp.Click(chromedp.CSS(`#s-audit-trail ~ form.filters button[type="submit"]`)))
		b.waitText("#audit-table", "delete_group[\\s\\S]*Doomed-")
		href := eval[string](b, `(document.querySelector('#audit-table a.trace')||{}).href||""`)
		if !strings.HasPrefix(href, "http://127.0.0.1:16686/trace/") {
			t.Errorf("the audit trail links a trace to %q", href)
		}
	})

	step(t, "extend a grant and watch it count down", func(t *testing.T) {
		b.t = t
		var g struct {
			Grant struct{ ID, ExpiresAt string }
		}
		s.api("POST", "/v1/grants", fmt.Sprintf(`{"domain":"src","group":%q,"user":%q,"duration":"300s","reason":"console test"}`, tempGroup, janeID), &g)
		b.run(chromedp.Navigate(s.base + "/#/access"))
		b.waitText("#grants-table .countdown", `^[45]m \d\ds left$`)
		// The countdown moves by itself, between the page's refreshes: the
		// same element shows another time a second later (a refresh would
		// replace the element, and the probe with it).
		testutil.CheckFor(t, waitUI, 100*time.Millisecond, func() error {
			moved := eval[bool](b, `(() => {
				const el = document.querySelector('#grants-table .countdown');
				if (!el) return false;
				if (el.dataset.probe === undefined) { el.dataset.probe = el.textContent; return false; }
				return el.textContent !== el.dataset.probe;
			})()`)
			if !moved {
				return errors.New("the countdown does not move on its own")
			}
			return nil
		})
		b.run(chromedp.Click(chromedp.CSS(`#grants-table button[data-action="extend"]`)))
		b.waitText("#confirm", "Extend this grant")
		b.run(chromedp.SetValue(chromedp.CSS("#extend-duration"), "7200"), chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.waitText("#notices", "now ends")
		b.waitText("#grants-table .countdown", `^1h 59m \d\ds left$`)
		var after struct{ Grant struct{ ExpiresAt time.Time } }
		s.api("GET", "/v1/grants/"+g.Grant.ID, "", &after)
		if left := time.Until(after.Grant.ExpiresAt); left < 110*time.Minute || left > 2*time.Hour {
			t.Errorf("the grant ends in %v after extending by 2h", left)
		}
		// Esc on a confirmation changes nothing: the grant stays.
		b.run(chromedp.Click(chromedp.CSS(`#grants-table button[data-action="revoke"]`)))
		b.waitText("#confirm", "Revoke this grant now")
		b.run(chromedp.KeyEvent(kb.Escape))
		testutil.CheckFor(t, waitUI, 50*time.Millisecond, func() error {
			if eval[bool](b, `document.getElementById('confirm').open`) {
				return errors.New("the confirmation is still open after Esc")
			}
			return nil
		})
		var still struct{ Grant struct{ State string } }
		s.api("GET", "/v1/grants/"+g.Grant.ID, "", &still)
		if still.Grant.State != "GRANT_STATE_ACTIVE" {
			t.Errorf("after Esc on the revoke confirmation the grant is %s", still.Grant.State)
		}
	})

	step(t, "an access request asked and approved in the console", func(t *testing.T) {
		b.t = t
		s.createUser(requester)
		s.settled()
		b.run(chromedp.Navigate(s.base + "/#/access"))
		b.waitText("#r-terms", "At most 2h 00m 00s[\\s\\S]*A reason is required")
		b.run(chromedp.SetValue(chromedp.CSS("#r-duration"), "30"), chromedp.SendKeys(chromedp.CSS("#r-user"), requester),
			chromedp.SendKeys(chromedp.CSS("#r-reason"), "console test"), chromedp.Click(chromedp.CSS(`#request-form button[type="submit"]`)))
		b.waitText("#confirm", "Request "+tempGroup)
		b.run(chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.waitText("#notices", "is waiting for approval")
		b.waitText("#waiting-table", requester+"[\\s\\S]*0 of 1")
		b.run(chromedp.Click(chromedp.CSS(`#waiting-table button[data-action="approve"]`)))
		b.waitText("#confirm", "Approve this request")
		b.run(chromedp.SendKeys(chromedp.CSS("#decide-reason"), "looks right"), chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.waitText("#notices", "Granted: "+requester)
		b.waitText("#requests-table", requester+"[\\s\\S]*active[\\s\\S]*2\\dm \\d\\ds left[\\s\\S]*approved by operator \\(looks right\\)")
		b.waitText("#requests-waiting", "Nothing waits for your decision")
		var gs struct {
			Grants []struct{ State, Requester string }
		}
		s.api("GET", "/v1/grants?user="+requester, "", &gs)
		if len(gs.Grants) != 1 || gs.Grants[0].State != "GRANT_STATE_ACTIVE" {
			t.Errorf("grants of %s after the approval: %+v", requester, gs.Grants)
		}
		b.shot("access")
	})

	step(t, "replay a dead letter", func(t *testing.T) {
		b.t = t
		danaID := s.createUser("dana@example.com")
		s.settled()
		if err := s.ords.SetFaults(database, emords.Faults{Outage: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.admin.AddMembers(ctx, dbGroupID, danaID); err != nil {
			t.Fatal(err)
		}
		b.run(chromedp.Navigate(s.base + "/#/deadletters"))
		b.waitText("#dlq-table", "membership.member_added[\\s\\S]*DB Users")
		if err := s.ords.SetFaults(database, emords.Faults{}); err != nil {
			t.Fatal(err)
		}
		b.shot("deadletters")
		if _, ok := s.ords.User(database, "DANA@EXAMPLE.COM"); ok {
			t.Fatal("dana has an account before the replay")
		}
		seq := eval[string](b, `document.querySelector('#dlq-table button[data-action="replay"]').dataset.seq`)
		b.run(chromedp.Click(chromedp.CSS(`#dlq-table button[data-action="replay"]`)))
		b.waitText("#confirm", "Replay dead letter #"+seq+"[\\s\\S]*membership.member_added")
		b.run(chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.waitText("#notices", "Dead letter #"+seq+" replayed")
		testutil.CheckFor(t, waitUI, 100*time.Millisecond, func() error {
			if eval[bool](b, `!!document.querySelector('#dlq-table button[data-seq="`+seq+`"]')`) {
				return fmt.Errorf("dead letter #%s still listed", seq)
			}
			return nil
		})
		var dl struct{ DeadLetters []struct{ Seq string } }
		s.api("GET", "/v1/deadletters", "", &dl)
		for _, d := range dl.DeadLetters {
			if d.Seq == seq {
				t.Errorf("dead letter #%s is still in IAM_DLQ after its replay", seq)
			}
		}
		if len(dl.DeadLetters) > 0 { // the outage left more than one: replay the rest at once
			b.run(chromedp.Click(chromedp.CSS(`#dlq-counts-table button[data-action="replay-all"]`)))
			b.waitText("#confirm", "Replay all \\d+ dead letters of dbprovisioner-appdb")
			b.run(chromedp.Click(chromedp.CSS("#confirm-ok")))
		}
		b.waitText("#dlq-list", "No dead letters here")
		s.api("GET", "/v1/deadletters", "", &dl)
		if len(dl.DeadLetters) != 0 {
			t.Errorf("%d dead letters left after replaying all", len(dl.DeadLetters))
		}
		testutil.CheckFor(t, waitUI, 50*time.Millisecond, func() error {
			if _, ok := s.ords.User(database, "DANA@EXAMPLE.COM"); !ok {
				return errors.New("no account for dana after the replay")
			}
			return nil
		})
		if roles := s.ords.Grants(database, "DANA@EXAMPLE.COM"); !strings.Contains(strings.Join(roles, ","), dbRole) {
			t.Errorf("dana's roles after the replay: %v", roles)
		}
	})

	step(t, "databases against the mapping", func(t *testing.T) {
		b.t = t
		b.run(chromedp.Navigate(s.base + "/#/databases"))
		b.waitText("#dbs .mapping", "DB Users[\\s\\S]*"+dbRole)
		b.run(chromedp.Click(chromedp.CSS(`#dbs button.secondary`)))
		b.waitText("#dbs .accounts", "DANA@EXAMPLE.COM[\\s\\S]*yes")
		b.shot("databases")
	})

	step(t, "no page or API call shows a secret", func(t *testing.T) {
		b.t = t
		cookies := b.cookies(s.base)
		for _, p := range []string{"/ui/session", "/ui/api/v1/status", "/ui/api/v1/deadletters", "/ui/api/v1/replicator/links",
			"/ui/api/v1/replicator/holds", "/ui/api/v1/replicator/actions?limit=1000", "/ui/api/v1/grants",
			"/ui/api/v1/dbprovisioner/databases", "/", "/ui/signin"} {
			req, _ := http.NewRequest("GET", s.base+p, nil)
			for _, c := range cookies {
				req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %d", p, resp.StatusCode)
			}
			noSecret(t, p, string(data))
		}
		for _, page := range []string{"overview", "replication", "access", "deadletters", "databases"} {
			b.run(chromedp.Navigate(s.base + "/#/" + page))
			b.waitText(".freshness", "Updated (just now|\\d+s ago)")
			noSecret(t, "#/"+page, b.html())
		}
	})

	step(t, "a session ended elsewhere sends the page to sign-in", func(t *testing.T) {
		b.t = t
		b.run(chromedp.Navigate(s.base + "/#/overview"))
		b.waitText("#consumers", "replicator-tgt")
		client := &http.Client{}
		cookie := b.cookies(s.base)[0]
		req, _ := http.NewRequest("GET", s.base+"/ui/session", nil)
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csrf := regexp.MustCompile(`"csrfToken":"([^"]+)"`).FindStringSubmatch(string(data))
		if csrf == nil {
			t.Fatalf("no CSRF token in %s", data)
		}
		req, _ = http.NewRequest("POST", s.base+"/ui/signout", nil)
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
		req.Header.Set("X-CSRF-Token", csrf[1])
		if resp, err = client.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("sign-out from elsewhere: %v %v", resp, err)
		}
		resp.Body.Close()
		b.waitText("#signin-form", "Admin token") // the next refresh found the session gone
		b.run(chromedp.SendKeys(chromedp.CSS("#token"), adminToken), chromedp.Submit(chromedp.CSS("#signin-form")))
		b.waitText("#who", `operator \(admin token\)`)
	})

	step(t, "sign out", func(t *testing.T) {
		b.t = t
		b.run(chromedp.Click(chromedp.CSS("#signout")))
		b.waitText("h1", "iamflow")
		b.run(chromedp.Navigate(s.base + "/#/overview"))
		b.waitText("#signin-form", "Admin token")
	})
}
