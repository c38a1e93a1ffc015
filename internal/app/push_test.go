package app

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	idemu "github.com/iamflow/iamflow/emulator/identitydomain"
	ordsemu "github.com/iamflow/iamflow/emulator/ords"
	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/scimserver"
	"github.com/iamflow/iamflow/internal/scimtest/idpfixture"
	"github.com/iamflow/iamflow/internal/telemetry"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/dbprovisioner"
	"github.com/iamflow/iamflow/services/replicator"
)

const pushToken = "push-token-for-the-idp-0123456789"

// TestPushedSourceEndToEnd replays each IdP's documented request sequence
// against a whole iamflow process: IdP push -> ingest's SCIM endpoint ->
// JetStream -> the replicator into an emulated OCI domain, and the DB
// provisioner into an emulated Autonomous Database, both reading the pushed
// source through ingest with the Identity Domains client. The audit trail
// names the pushed source.
func TestPushedSourceEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		idp              string
		member, inactive string // userNames: the member left in "DB Users", a deactivated user
		gone             string // a userName deleted or removed from the group
	}{
		{"okta", "jdoe@example.com", "asmith@example.com", "asmith@example.com"},
		{"entra", "Test_User_ab6490ee@testuser.com", "Test_User_c3f2@testuser.com", "Test_User_d4e5@testuser.com"},
	} {
		t.Run(tc.idp, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg, ln, tgt, db := pushConfig(t, tc.idp)
			a, err := New(ctx, cfg, []string{"all"}, WithTelemetry(telemetry.Noop()), WithIngestListener(ln))
			if err != nil {
				t.Fatal(err)
			}
			defer runApp(t, ctx, cancel, a)()
			base := "http://" + ln.Addr().String() + "/scim/v2/" + tc.idp
			idpfixture.Load(t, tc.idp).Replay(t, base, pushToken)

			// The target converges on the pushed state.
			testutil.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
				g, ok := tgt.GroupByName("DB Users")
				if !ok {
					return fmt.Errorf("group DB Users not in the target yet")
				}
				var names []string
				ms, _ := tgt.Members(g.ID)
				for _, m := range ms {
					names = append(names, m.UserName)
				}
				if !slices.Equal(names, []string{tc.member}) {
					return fmt.Errorf("target members of DB Users = %v, want [%s]", names, tc.member)
				}
				if u, ok := tgt.UserByName(tc.inactive); !ok || u.Active {
					return fmt.Errorf("target user %s: present %v, active %v; want present and inactive", tc.inactive, ok, u.Active)
				}
				return nil
			})
			// The database: the member has the role, the one who left does not.
			testutil.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
				u, ok := db.User("hr", strings.ToUpper(tc.member))
				if !ok || !slices.Equal(u.Roles, []string{"APP_READER"}) || u.ExternalName != "IAM_PRINCIPAL_NAME=tgt/"+tc.member {
					return fmt.Errorf("account of %s: %v %+v", tc.member, ok, u)
				}
				if g, ok := db.User("hr", strings.ToUpper(tc.gone)); ok && slices.Contains(g.Roles, "APP_READER") {
					return fmt.Errorf("%s still has APP_READER: %+v", tc.gone, g)
				}
				return nil
			})
			// The audit trail names the pushed source, and every record was
			// caused by one of its events.
			recs := auditRecords(t, a.Bus())
			var fromIdP int
			for _, r := range recs {
				if r.GetDomain() == tc.idp && strings.HasPrefix(r.GetEventId(), "scim:"+tc.idp+":") {
					fromIdP++
				}
			}
			services := map[string]bool{}
			for _, r := range recs {
				if r.GetDomain() == tc.idp {
					services[r.GetService()] = true
				}
			}
			if fromIdP == 0 || !services["replicator"] || !services["dbprovisioner"] {
				t.Fatalf("audit: %d records name %s and one of its events; services %v", fromIdP, tc.idp, services)
			}
		})
	}
}

// pushConfig is a process with the pushed source idp, an emulated target
// domain "tgt" linked to it, and an emulated database "hr" mapping the
// source's group "DB Users" to APP_READER. ingest's listener is bound
// first, so the pushed source's URL is known.
func pushConfig(t *testing.T, idp string) (config.Config, net.Listener, *idemu.Domain, *ordsemu.Emulator) {
	t.Helper()
	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg.Ingest.Listen = ln.Addr().String()

	tgt := startDomain(t, "tgt")
	db := startHRDatabase(t)
	t.Setenv("IAMFLOW_TEST_DOMAIN_SECRET", "domain-secret")
	t.Setenv("IAMFLOW_TEST_ORDS_SECRET", "ords-secret")
	t.Setenv("IAMFLOW_TEST_PUSH_TOKEN", pushToken)

	api := identitydomain.DefaultConfig()
	api.URL, api.ClientID, api.ClientSecret, api.Tier = tgt.URL(), "iamflow", "env:IAMFLOW_TEST_DOMAIN_SECRET", identitydomain.TierPremium
	pushed := cfg.PushedDomain(config.Domain{Name: idp, Config: identitydomain.DefaultConfig(),
		Push: &scimserver.Push{Token: "env:IAMFLOW_TEST_PUSH_TOKEN"}})
	cfg.Domains = append(cfg.Domains, config.Domain{Name: "tgt", OCIName: "tgt", Config: api}, pushed)
	cfg.Replicator.Links = []replicator.Link{{Name: "push", Source: idp, Targets: []string{"tgt"}}}
	oc := ords.DefaultConfig()
	oc.URL, oc.ClientID, oc.ClientSecret = db.BaseURL("hr"), "ords-client", "env:IAMFLOW_TEST_ORDS_SECRET"
	cfg.Dbprovisioner.Databases = []dbprovisioner.DatabaseConfig{{
		// The accounts are for the OCI users the replicator makes of the
		// pushed ones: they sign in through the target domain.
		Name: "hr", Domain: idp, PrincipalDomain: "tgt", ORDS: oc,
		Groups: []dbprovisioner.GroupMapping{{Group: "DB Users", Roles: []string{"APP_READER"}}},
	}}
	return cfg, ln, tgt, db
}

// auditRecords reads every record in IAM_AUDIT.
func auditRecords(t *testing.T, b *bus.Bus) []*iamflowv1.AuditRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := b.JetStream().Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*iamflowv1.AuditRecord
	for uint64(len(out)) < info.State.Msgs {
		batch, err := c.Fetch(int(info.State.Msgs)-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			r := &iamflowv1.AuditRecord{}
			if err := proto.Unmarshal(m.Data(), r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
			n++
		}
		if n == 0 {
			break
		}
	}
	return out
}
