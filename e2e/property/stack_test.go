package property

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	emords "github.com/iamflow/iamflow/emulator/ords"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/app"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/apptest"
	"github.com/iamflow/iamflow/internal/audit"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/services/capabilities"
	"github.com/iamflow/iamflow/services/dbprovisioner"
	"github.com/iamflow/iamflow/services/expiry"
	"github.com/iamflow/iamflow/services/ingest"
	"github.com/iamflow/iamflow/services/replicator"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

const (
	clientID     = "iamflow"
	clientSecret = "s3cret-iamflow-property"
	adminID      = "console-admin"
	adminSecret  = "s3cret-admin-property"
	webhookPass  = "correct horse battery staple property"
	database     = "pdb"
	dbGroup      = "DB Users"
	dbRole       = "APP_READER"
	tempGroup    = "OCI-Temp-Admins"
	link         = "hub"
)

// written is one change an emulated domain made, as its event says.
type written struct {
	at       time.Time
	typ      string // the event type's last part: deleteuser, deactivateuser, removeuserfromgroup, ...
	resource string // adminResourceId
	name     string // adminResourceName
	ref      string // adminRefResourceId (the member of a membership event)
	body     []byte
}

// writeLog records every change a domain made, from its own events.
type writeLog struct {
	mu  sync.Mutex
	all []written
}

func (l *writeLog) hook(b []byte) {
	var ev struct {
		EventType string `json:"eventType"`
		Data      struct {
			AdditionalDetails map[string]any `json:"additionalDetails"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return
	}
	ad := ev.Data.AdditionalDetails
	s := func(k string) string { v, _ := ad[k].(string); return v }
	w := written{at: time.Now(), typ: ev.EventType[strings.LastIndexByte(ev.EventType, '.')+1:], resource: s("adminResourceId"),
		name: s("adminResourceName"), ref: s("adminRefResourceId"), body: append([]byte(nil), b...)}
	l.mu.Lock()
	l.all = append(l.all, w)
	l.mu.Unlock()
}

func (l *writeLog) snapshot() []written {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]written(nil), l.all...)
}

// stack is the whole pipeline in one process: an emulated source domain
// posting its events to the real ingest webhook, the real services on a
// real embedded JetStream (app.New, as `iamflow serve all` builds them), an
// emulated target domain and an emulated ORDS.
type stack struct {
	t                  *testing.T
	src, tgt           *emu.Domain
	ords               *emords.Emulator
	srcLog, tgtLog     writeLog
	admin              *identitydomain.Client // a person at the source's console
	app                *app.App
	webhook            string
	webhookUser        string
	replicator         *replicator.Service
	dbprov             *dbprovisioner.Service
	expiry             *expiry.Service
	capabilities       *capabilities.Service
	ingestSvc          *ingest.Service
	srcEvents          chan []byte
	capturedMu         sync.Mutex
	captured           [][]byte
	tempGroupTTL       time.Duration
	expiryScanInterval time.Duration
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t}
	fast := func(cc bus.ConsumerConfig) bus.ConsumerConfig {
		cc.Backoff = []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
		cc.MaxDeliver = 40
		return cc
	}
	s.tempGroupTTL = 3 * time.Second
	as := apptest.New(t, apptest.Options{ClientID: clientID, ClientSecret: clientSecret, AdminID: adminID, AdminSecret: adminSecret,
		WebhookPassword: webhookPass, Link: link, Database: database, DBGroup: dbGroup, DBRole: dbRole, Consumer: fast,
		OnSourceEvent: func(b []byte) {
			s.srcLog.hook(b)
			s.capturedMu.Lock()
			s.captured = append(s.captured, append([]byte(nil), b...))
			s.capturedMu.Unlock()
		},
		OnTargetEvent: s.tgtLog.hook,
		AppOptions:    []app.Option{app.WithWebhookPassword(secret.NewValue(webhookPass))},
		Configure: func(_ *apptest.Stack, cfg *config.Config) {
			cfg.Dev = true
			for i := range cfg.Domains {
				cfg.Domains[i].Config.Retry.MaxDelay = 300 * time.Millisecond
				cfg.Domains[i].Config.Breaker = identitydomain.BreakerConfig{Failures: 50, Cooldown: 200 * time.Millisecond}
			}
			l := &cfg.Replicator.Links[0]
			l.Attributes.User = append(l.Attributes.User, planner.AttrUserName)                        // renames are copied too
			l.Guard = planner.GuardConfig{MaxDeletions: 1_000_000, MaxPercent: 100, Window: time.Hour} // the driver deletes a lot on purpose
			no := false
			cfg.Capabilities.Default = capabilities.Flags{CanUseAPIKeys: &no}
			cfg.Capabilities.Sweep = capabilities.SweepConfig{}
			cfg.Capabilities.JITRetryAfter = 100 * time.Millisecond
			cfg.Capabilities.JITMaxAttempts = 5
			cfg.Expiry.Groups = []expiry.TemporaryGroup{{Domain: "src", Group: tempGroup, DefaultDuration: s.tempGroupTTL, MaxDuration: time.Minute}}
		}})
	s.src, s.tgt, s.ords, s.admin, s.app = as.Src, as.Tgt, as.ORDS, as.Admin, as.App
	s.webhook, s.webhookUser = as.Webhook, as.WebhookUser
	s.replicator = s.app.Service(replicator.Name).(*replicator.Service)
	s.dbprov = s.app.Service(dbprovisioner.Name).(*dbprovisioner.Service)
	s.expiry = s.app.Service(expiry.Name).(*expiry.Service)
	s.capabilities = s.app.Service(capabilities.Name).(*capabilities.Service)
	s.ingestSvc = s.app.Service(ingest.Name).(*ingest.Service)
	return s
}

// settled reports whether every event the source emitted was delivered and
// every consumer has handled everything.
func (s *stack) settled() error {
	ctx := context.Background()
	if st := s.src.EventStats(); st.Pending != 0 {
		return fmt.Errorf("src has %d events to deliver", st.Pending)
	}
	for name, svc := range map[string]app.Service{replicator.Name: s.replicator, dbprovisioner.Name: s.dbprov,
		expiry.Name: s.expiry, capabilities.Name: s.capabilities} {
		st := svc.Status(ctx)
		if len(st.GetConsumers()) == 0 {
			return fmt.Errorf("%s reports no consumer", name)
		}
		for _, c := range st.GetConsumers() {
			if c.GetPending() != 0 || c.GetAckPending() != 0 {
				return fmt.Errorf("%s consumer %s: %d pending, %d in progress", name, c.GetName(), c.GetPending(), c.GetAckPending())
			}
		}
	}
	return nil
}

// post delivers a raw OCI event to the webhook, as Notifications would.
func (s *stack) post(body []byte) error {
	req, err := http.NewRequest(http.MethodPost, s.webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(s.webhookUser, webhookPass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

// capturedEvents returns the source's events so far.
func (s *stack) capturedEvents() [][]byte {
	s.capturedMu.Lock()
	defer s.capturedMu.Unlock()
	return append([][]byte(nil), s.captured...)
}

// dlqDepth is the number of dead letters of every service, and what each
// says (consumer, the event's subject, the reason), for the failure message.
func (s *stack) dlqDepth() (uint64, []string, error) {
	ctx := context.Background()
	st, err := s.app.Bus().JetStream().Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return 0, nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, nil, err
	}
	var what []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && len(what) < 20 && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		what = append(what, fmt.Sprintf("%s: %s: %s", m.Subject, m.Header.Get(bus.HeaderDLQSubject), m.Header.Get(bus.HeaderDLQReason)))
	}
	return info.State.Msgs, what, nil
}

// Source changes, made by the person at the console.

func sp(s string) *string { return &s }

var yes = true

func (s *stack) createUser(name, display string) (string, error) {
	u, _, err := s.admin.CreateUser(context.Background(), identitydomains.User{UserName: sp(name), DisplayName: sp(display),
		Name:   &identitydomains.UserName{GivenName: sp(display), FamilyName: sp("Tester")},
		Emails: []identitydomains.UserEmails{{Value: sp(name), Type: identitydomains.UserEmailsTypeWork, Primary: &yes}}})
	if err != nil {
		return "", err
	}
	return *u.Id, nil
}

func (s *stack) createGroup(name string) (string, error) {
	g, _, err := s.admin.CreateGroup(context.Background(), identitydomains.Group{DisplayName: sp(name)})
	if err != nil {
		return "", err
	}
	return *g.Id, nil
}

func replaceOp(path string, v any) identitydomains.Operations {
	return identitydomain.Replace(path, v)
}

var errSkip = errors.New("nothing to do")

// explain logs, for every user or group a diff names, what the target's
// write log and the replicator's audit trail say happened to it.
func (s *stack) explain(t *testing.T, diff string) {
	t.Helper()
	names := map[string]bool{}
	for _, line := range strings.Split(diff, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "user" || f[0] == "group") {
			names[strings.TrimSuffix(strings.ToLower(f[1]), ":")] = true
		}
	}
	for _, w := range s.tgtLog.snapshot() {
		if names[strings.ToLower(w.name)] {
			t.Logf("target %s %s %s ref=%s at %s", w.typ, w.name, w.resource, w.ref, w.at.Format(time.StampMicro))
		}
	}
	for _, w := range s.srcLog.snapshot() {
		if names[strings.ToLower(w.name)] {
			t.Logf("source %s %s %s ref=%s at %s", w.typ, w.name, w.resource, w.ref, w.at.Format(time.StampMicro))
		}
	}
	recs, err := s.auditRecords()
	if err != nil {
		t.Logf("audit: %v", err)
		return
	}
	for _, r := range recs {
		if names[strings.ToLower(r.GetResource().GetName())] {
			t.Logf("audit %s %s %s %s target=%s src=%s %s event=%s", r.GetService(), r.GetAction(), r.GetOutcome(), r.GetResource().GetName(),
				r.GetResource().GetId(), r.GetAfter()["source_id"], r.GetReason(), r.GetEventId())
		}
	}
}

// auditRecords reads every audit record stored.
func (s *stack) auditRecords() ([]*iamflowv1.AuditRecord, error) {
	ctx := context.Background()
	st, err := s.app.Bus().JetStream().Stream(ctx, bus.StreamAudit)
	if err != nil {
		return nil, err
	}
	var out []*iamflowv1.AuditRecord
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(bus.AuditSubject("*", "*")))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		r, err := audit.Decode(m.Data)
		if err != nil {
			return out, err
		}
		out = append(out, r)
		seq = m.Sequence + 1
	}
}
