package capabilities

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
)

const domainShort = "prod"

// newClient is the real Identity Domains client for the emulator; limited
// says whether it applies the free tier's rate limits (else none).
func newClient(t testing.TB, d *emu.Domain, id, sec string, limited bool) *identitydomain.Client {
	t.Helper()
	cfg := pipelinetest.ClientConfig(t, d.URL(), id, sec, limited)
	cfg.Retry = identitydomain.RetryConfig{MaxAttempts: 4, BaseDelay: 20 * time.Millisecond, MaxDelay: 2 * time.Second}
	return pipelinetest.Client(t, domainShort, cfg)
}

// pipeline is the whole path: the emulated domain posts its events to the
// real ingest webhook, which publishes to a real JetStream, which the
// capabilities service consumes, reading and writing the emulated domain
// through the real client.
type pipeline struct {
	t      testing.TB
	bus    *bus.Bus
	domain *emu.Domain
	client *identitydomain.Client // iamflow's
	human  *identitydomain.Client // an administrator's
	svc    *Service
}

// newPipeline starts the pipeline; wrap, if given, wraps the service's directory.
func newPipeline(t *testing.T, cfg Config, wrap ...func(Directory) Directory) *pipeline {
	t.Helper()
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	webhook := pipelinetest.Webhook(t, b, domainShort)
	p := &pipeline{t: t, bus: b}
	p.domain = pipelinetest.Emulator(t, domainShort, emu.TierUnlimited, webhook)
	p.client = newClient(t, p.domain, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, false)
	p.human = newClient(t, p.domain, pipelinetest.HumanClientID, pipelinetest.HumanSecret, false)
	dir := NewDirectory(p.client)
	for _, w := range wrap {
		dir = w(dir)
	}
	svc, err := New(context.Background(), cfg, b, map[string]Directory{domainShort: dir},
		servicekit.WithLogger(pipelinetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	p.svc = svc
	pipelinetest.Run(t, p.svc)
	return p
}

// settled waits until every event the domain emitted was handled and
// acknowledged (pipelinetest.Settled).
func (p *pipeline) settled() {
	p.t.Helper()
	pipelinetest.Settled(p.t, 20*time.Second, 10*time.Millisecond, p.svc, 1, map[string]*emu.Domain{domainShort: p.domain})
}

// auditRecords returns the service's audit records so far.
func auditRecords(t testing.TB, b *bus.Bus) []*iamflowv1.AuditRecord {
	t.Helper()
	return pipelinetest.AuditRecords(t, b, Name, actionSetCapabilities)
}

// createUser creates a user through the human's client.
func (p *pipeline) createUser(name string, federated bool) string {
	p.t.Helper()
	return pipelinetest.CreateUser(p.t, p.human, name, func(u *identitydomains.User) {
		if federated {
			u.UrnIetfParamsScimSchemasOracleIdcsExtensionUserUser = &identitydomains.ExtensionUserUser{IsFederatedUser: ptr(true)}
		}
	})
}

func ptrS(s string) *string { return &s }

// caps returns the emulated user's flags.
func caps(t testing.TB, d *emu.Domain, id string) map[string]bool {
	t.Helper()
	u, ok := d.User(id)
	if !ok {
		t.Fatalf("no user %s", id)
	}
	return u.Capabilities
}

// hasFlags reports, as an error, how the emulated user's flags differ from want.
func hasFlags(d *emu.Domain, id string, want Flags) error {
	u, ok := d.User(id)
	if !ok {
		return fmt.Errorf("no user %s", id)
	}
	var diffs []string
	for _, def := range flagDefs {
		w := *def.field(&want)
		if w != nil && u.Capabilities[def.attr] != *w {
			diffs = append(diffs, fmt.Sprintf("%s=%v", def.attr, u.Capabilities[def.attr]))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("user %s has %s", u.UserName, strings.Join(diffs, ", "))
	}
	return nil
}
