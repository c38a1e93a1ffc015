package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	emords "github.com/iamflow/iamflow/emulator/ords"
	"github.com/iamflow/iamflow/internal/app"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/apptest"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
	ordsclient "github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/expiry"
	"github.com/iamflow/iamflow/services/expiry/access"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// The secrets of the stack: none may appear in a page or an API answer.
const (
	adminToken   = "console-admin-token-Zq8v1Lw3Tx"
	webhookPass  = "console-webhook-pass-Pm4k9Rj2"
	clientID     = "iamflow-console-test"
	clientSecret = "console-client-secret-Hd7s2Ny5"
	adminID      = "console-admin"
	adminSecret  = "console-person-secret-Bw6c3Qe8"
	link         = "main"
	tempGroup    = "Temp-Admins"
	dbGroup      = "DB Users"
	dbRole       = "APP_READER"
	database     = "appdb"
	requester    = "rita@example.com" // the access policy's one requester
)

var secrets = []string{adminToken, webhookPass, clientSecret, adminSecret}

// stack is iamflow as `iamflow serve all` builds it (app.New, embedded
// JetStream, the admin token required), with emulated source and target
// domains and an emulated ORDS, for the console to be driven against.
type stack struct {
	t        *testing.T
	src, tgt *emu.Domain
	ords     *emords.Emulator
	admin    *identitydomain.Client // a person at the source's console
	app      *app.App
	base     string // the admin HTTP listener, where the console is
}

func newStack(t *testing.T) *stack {
	t.Helper()
	fast := func(cc bus.ConsumerConfig) bus.ConsumerConfig {
		cc.Backoff = []time.Duration{20 * time.Millisecond, 50 * time.Millisecond}
		cc.MaxDeliver = 3
		return cc
	}
	as := apptest.New(t, apptest.Options{ClientID: clientID, ClientSecret: clientSecret, AdminID: adminID, AdminSecret: adminSecret,
		WebhookPassword: webhookPass, Link: link, Database: database, DBGroup: dbGroup, DBRole: dbRole, Consumer: fast,
		Configure: func(s *apptest.Stack, cfg *config.Config) {
			cfg.Admin.Token = apptest.WriteSecret(t, s.Dir, "admin-token", adminToken)
			cfg.Admin.Console.TraceURL = "http://127.0.0.1:16686/trace/{trace_id}"
			cfg.Ingest.Password = apptest.WriteSecret(t, s.Dir, "webhook", webhookPass)
			cfg.Replicator.Links[0].Guard = planner.GuardConfig{MaxDeletions: 1, MaxPercent: 100, Window: time.Hour} // the second deletion is held
			cfg.Dbprovisioner.Databases[0].ORDS.Retry = ordsclient.RetryConfig{MaxAttempts: 1, BaseDelay: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond}
			cfg.Capabilities.JITMaxAttempts = 2
			cfg.Expiry.Groups = []expiry.TemporaryGroup{{Domain: "src", Group: tempGroup, DefaultDuration: time.Hour, MaxDuration: 8 * time.Hour}}
			cfg.Expiry.Access.Policies = []access.Policy{{Domain: "src", Group: tempGroup, Requesters: access.Principals{Users: []string{requester}},
				Approvers: access.Principals{Groups: []string{"Access-Approvers"}}, Justification: true, MaxDuration: 2 * time.Hour}}
		}})
	return &stack{t: t, src: as.Src, tgt: as.Tgt, ords: as.ORDS, admin: as.Admin, app: as.App,
		base: "http://" + as.App.Admin().HTTPAddr().String()}
}

func sp(s string) *string { return &s }

func (s *stack) createUser(name string) string {
	s.t.Helper()
	u, _, err := s.admin.CreateUser(context.Background(), identitydomains.User{UserName: sp(name),
		Name: &identitydomains.UserName{GivenName: sp("Test"), FamilyName: sp("User")}})
	if err != nil {
		s.t.Fatal(err)
	}
	return *u.Id
}

func (s *stack) createGroup(name string) string {
	s.t.Helper()
	g, _, err := s.admin.CreateGroup(context.Background(), identitydomains.Group{DisplayName: sp(name)})
	if err != nil {
		s.t.Fatal(err)
	}
	return *g.Id
}

// api calls the admin REST API as the CLI does, with the admin token.
func (s *stack) api(method, path, body string, out any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// settled waits until no consumer has anything pending.
func (s *stack) settled() {
	s.t.Helper()
	testutil.CheckFor(s.t, 30*time.Second, 20*time.Millisecond, func() error {
		if st := s.src.EventStats(); st.Pending != 0 {
			return fmt.Errorf("src has %d events to deliver", st.Pending)
		}
		for _, name := range s.app.Services() {
			for _, c := range s.app.Service(name).Status(context.Background()).GetConsumers() {
				if c.GetPending() != 0 || c.GetAckPending() != 0 {
					return fmt.Errorf("%s: %d pending, %d in flight", c.GetName(), c.GetPending(), c.GetAckPending())
				}
			}
		}
		return nil
	})
}
