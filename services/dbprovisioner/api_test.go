package dbprovisioner

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

func TestAPI(t *testing.T) {
	h := newHarness(t, testConfig(), false)
	ctx := context.Background()
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}})

	p, err := h.svc.PreviewDatabaseUser(ctx, &iamflowv1.PreviewDatabaseUserRequest{Database: "hr", User: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if p.DbUser != aliceAcct || p.UserId != aliceID || p.AccountExists || len(p.Statements) != 3 ||
		p.Statements[0].Action != actionCreateUser || p.Groups[0] != "HR Readers" {
		t.Errorf("preview %v", p)
	}
	if n := len(h.db.statements()); n != 0 {
		t.Fatalf("preview ran %d statements", n)
	}
	for _, tc := range []struct {
		db, user string
		code     codes.Code
	}{
		{"", "alice", codes.InvalidArgument},
		{"nope", "alice", codes.NotFound},
		{"hr", "", codes.InvalidArgument},
		{"hr", `x" cascade; drop user admin--`, codes.InvalidArgument},
	} {
		_, err := h.svc.PreviewDatabaseUser(ctx, &iamflowv1.PreviewDatabaseUserRequest{Database: tc.db, User: tc.user})
		if status.Code(err) != tc.code {
			t.Errorf("preview %q %q: %v, want %v", tc.db, tc.user, err, tc.code)
		}
	}

	// REST: reconcile, then status.
	mux := runtime.NewServeMux()
	if err := h.svc.Endpoint().Gateway(ctx, mux); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := http.Post(srv.URL+"/v1/dbprovisioner/databases/hr:reconcile", "application/json", strings.NewReader(`{"dry_run":true}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var rep struct {
		DryRun     bool `json:"dryRun"`
		Statements []struct {
			SQL string `json:"sql"`
		} `json:"statements"`
		Accounts []struct {
			Account, IamUser, Status string
			Groups                   []string
			InStep                   bool
		} `json:"accounts"`
	}
	if err := json.Unmarshal(body, &rep); err != nil || res.StatusCode != 200 || !rep.DryRun || len(rep.Statements) != 3 {
		t.Fatalf("reconcile: %d %s %v", res.StatusCode, body, err)
	}
	// The account against the mapping: alice is in HR Readers, has no account yet.
	if len(rep.Accounts) != 1 || rep.Accounts[0].Account != aliceAcct || rep.Accounts[0].IamUser != "alice@example.com" ||
		rep.Accounts[0].InStep || rep.Accounts[0].Status != "" || len(rep.Accounts[0].Groups) != 1 {
		t.Fatalf("accounts of the dry run: %s", body)
	}
	if _, err := h.svc.ReconcileDatabase(ctx, &iamflowv1.ReconcileDatabaseRequest{Database: "hr"}); err != nil {
		t.Fatal(err)
	}
	res, err = http.Get(srv.URL + "/v1/dbprovisioner/databases/hr")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"lastReconcile"`) || !strings.Contains(string(body), `"statements":"3"`) {
		t.Errorf("status: %d %s", res.StatusCode, body)
	}
	st, err := h.svc.GetDatabaseStatus(ctx, &iamflowv1.GetDatabaseStatusRequest{})
	if err != nil || len(st.Databases) != 1 || st.Databases[0].Mode != modeUser || st.Databases[0].LastReconcile.GetChanged() != 1 {
		t.Errorf("all status %v %v", st, err)
	}
	if m := st.GetDatabases()[0].GetMapping(); len(m) != 2 || m[0].Group != "HR Readers" || strings.Join(m[0].Roles, ",") != "HR_READ" ||
		m[1].Group != "HR Writers" || strings.Join(m[1].Roles, ",") != "HR_READ,HR_WRITE" {
		t.Errorf("status mapping %v", m)
	}
}

// A user is named by SCIM id or userName; a userName with an id's form that
// is no user's id is tried as a userName.
func TestAPIUserByID(t *testing.T) {
	h := newHarness(t, testConfig(), false)
	const idLike, idOfIDLike = "b0000000000000000000000000000002", "c0000000000000000000000000000003"
	h.dir.set(User{ID: aliceID, UserName: "alice@example.com", Active: true, Groups: []string{"HR Readers"}})
	h.dir.set(User{ID: idOfIDLike, UserName: idLike, Active: true, Groups: []string{"HR Readers"}})
	for user, want := range map[string]string{aliceID: aliceID, idLike: idOfIDLike, "alice@example.com": aliceID} {
		p, err := h.svc.PreviewDatabaseUser(context.Background(), &iamflowv1.PreviewDatabaseUserRequest{Database: "hr", User: user})
		if err != nil || p.GetUserId() != want {
			t.Errorf("preview of %q: %v, %v; want the user %s", user, p, err, want)
		}
	}
}
