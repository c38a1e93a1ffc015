package replicator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/pipelinetest"
)

// The admin API over real gRPC and the REST gateway.
func TestAdminAPI(t *testing.T) {
	p := newPipeline(t, config(link("hub", "src", "tgt")), pipelineOpts{noRun: true})
	src := p.sites["src"]
	g := src.createGroup(t, "api-group", "")
	src.add(t, g, src.createUser(t, "api-user", "Api User"))

	conn, base := pipelinetest.AdminAPI(t, p.svc.Endpoint(), Name, nil)
	c := iamflowv1.NewReplicatorServiceClient(conn)
	ctx := context.Background()

	// gRPC: a dry run plans, changes nothing.
	resp, err := c.Reconcile(ctx, &iamflowv1.ReconcileRequest{Link: "hub", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Reports[0]; !r.DryRun || r.Actions["create_group"] != 1 || r.Actions["create_user"] != 1 || r.Actions["add_member"] != 1 {
		t.Fatalf("dry run: %v", r)
	}
	if w := writes(p.sites["tgt"].emu); w != 0 {
		t.Fatalf("dry run wrote %d times", w)
	}
	// Errors carry stable codes.
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{func() error { _, err := c.Reconcile(ctx, &iamflowv1.ReconcileRequest{Link: "nope"}); return err }(), codes.NotFound},
		{func() error { _, err := c.Reconcile(ctx, &iamflowv1.ReconcileRequest{}); return err }(), codes.InvalidArgument},
		{func() error {
			_, err := c.ApproveDeletions(ctx, &iamflowv1.ApproveDeletionsRequest{Id: "missing"})
			return err
		}(), codes.NotFound},
		{func() error {
			_, err := c.ReplayDeadLetters(ctx, &iamflowv1.ReplayDeadLettersRequest{Target: "src"})
			return err
		}(), codes.NotFound},
		{func() error { _, err := c.ListActions(ctx, &iamflowv1.ListActionsRequest{Limit: -1}); return err }(), codes.InvalidArgument},
	} {
		if status.Code(tc.err) != tc.code {
			t.Errorf("error %v: code %v, want %v", tc.err, status.Code(tc.err), tc.code)
		}
	}

	// REST: reconcile for real, then status and the audit trail.
	var rec iamflowv1.ReconcileResponse
	if code := rest(t, http.MethodPost, base+"/v1/replicator/links/hub:reconcile", `{}`, &rec); code != 200 || rec.Reports[0].Actions["add_member"] != 1 {
		t.Fatalf("REST reconcile: %d %v", code, &rec)
	}
	p.converged("src", "tgt", 5*time.Second)
	var st iamflowv1.GetReplicatorStatusResponse
	if code := rest(t, http.MethodGet, base+"/v1/replicator/links/hub", "", &st); code != 200 ||
		len(st.Links) != 1 || st.Links[0].Directions[0].Target != "tgt" || st.Links[0].Directions[0].LastReconcile == nil ||
		st.Links[0].Directions[0].Circuit != "closed" {
		t.Fatalf("REST status: %d %v", code, &st)
	}
	// The dry run before is kept with its plan: the drift the console shows.
	if dr := st.Links[0].Directions[0].LastDryRun; dr == nil || !dr.DryRun || dr.Actions["create_group"] != 1 || len(dr.Planned) != 3 {
		t.Fatalf("last dry run: %v", dr)
	}
	var acts iamflowv1.ListActionsResponse
	if code := rest(t, http.MethodGet, base+"/v1/replicator/actions?link=hub&action=create_user", "", &acts); code != 200 ||
		len(acts.Records) != 1 || acts.Records[0].Resource.GetName() != "api-user" || acts.Records[0].Outcome != "applied" {
		t.Fatalf("REST actions: %d %v", code, &acts)
	}
	var holds iamflowv1.ListHoldsResponse
	if code := rest(t, http.MethodGet, base+"/v1/replicator/holds", "", &holds); code != 200 || len(holds.Holds) != 0 {
		t.Fatalf("REST holds: %d %v", code, &holds)
	}
	var replay iamflowv1.ReplayDeadLettersResponse
	if code := rest(t, http.MethodPost, base+"/v1/replicator/targets/tgt:replay", `{}`, &replay); code != 200 || replay.Replayed != 0 {
		t.Fatalf("REST replay: %d %v", code, &replay)
	}
}

// rest calls the REST API and decodes a successful answer into out.
func rest(t *testing.T, method, url, body string, out proto.Message) int {
	t.Helper()
	code, _ := pipelinetest.REST(t, method, url, body, out)
	return code
}
