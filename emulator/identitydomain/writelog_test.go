package identitydomain_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/emulator/identitydomain"
)

// The write log records every committed change through the API, in order,
// at the domain's clock, with the actor; GET /_emulator/writes pages it.
func TestWriteLog(t *testing.T) {
	clock := identitydomain.NewManualClock(t0)
	d := start(t, baseConfig(), identitydomain.WithClock(clock))
	c := newSDK(t, d)
	ctx := context.Background()

	u, err := c.CreateUser(ctx, identitydomains.CreateUserRequest{User: identitydomains.User{
		Schemas: []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, UserName: common.String("ann")}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.CreateGroup(ctx, identitydomains.CreateGroupRequest{Group: identitydomains.Group{
		Schemas: []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, DisplayName: common.String("crew")}})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(op identitydomains.OperationsOpEnum, path string, v any) {
		t.Helper()
		o := identitydomains.Operations{Op: op, Path: common.String(path)}
		if v != nil {
			o.Value = anyValue(v)
		}
		if _, err := c.PatchGroup(ctx, identitydomains.PatchGroupRequest{GroupId: g.Id, PatchOp: identitydomains.PatchOp{
			Schemas: []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, Operations: []identitydomains.Operations{o}}}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	patch(identitydomains.OperationsOpAdd, "members", []any{map[string]any{"value": *u.Id, "type": "User"}})
	clock.Advance(time.Second)
	patch(identitydomains.OperationsOpAdd, "members", []any{map[string]any{"value": *u.Id, "type": "User"}}) // no change: not logged
	patch(identitydomains.OperationsOpRemove, `members[value eq "`+*u.Id+`"]`, nil)
	if _, err := c.DeleteUser(ctx, identitydomains.DeleteUserRequest{UserId: u.Id}); err != nil {
		t.Fatal(err)
	}

	log := readWrites(t, d.URL()+"/_emulator/writes")
	var got []string
	for i, w := range log.Writes {
		got = append(got, fmt.Sprintf("%d %s %s %s %s %s", w.Seq, w.Time.Sub(t0), w.Op, w.ResourceName, w.RefName, w.Actor))
		if w.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d", i, w.Seq)
		}
	}
	// A membership change is an updategroup and an add/remove event, as in OCI.
	want := []string{
		"1 0s createuser ann  " + clientID,
		"2 0s creategroup crew  " + clientID,
		"3 1s updategroup crew  " + clientID,
		"4 1s addusertogroup crew ann " + clientID,
		"5 2s updategroup crew  " + clientID,
		"6 2s removeuserfromgroup crew ann " + clientID,
		"7 2s deleteuser ann  " + clientID,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("write log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := log.Writes[3]; m.ResourceID != *g.Id || m.RefID != *u.Id {
		t.Errorf("membership entry names group %s and user %s, want %s and %s", m.ResourceID, m.RefID, *g.Id, *u.Id)
	}
	if log.Last != 7 || log.Dropped != 0 {
		t.Errorf("last %d, dropped %d", log.Last, log.Dropped)
	}
	if page := readWrites(t, d.URL()+"/_emulator/writes?after=5"); len(page.Writes) != 2 || page.Writes[0].Seq != 6 {
		t.Errorf("after=5: %d entries, first %d", len(page.Writes), page.Writes[0].Seq)
	}
	if page := readWrites(t, d.URL()+"/_emulator/writes?after=7"); len(page.Writes) != 0 || page.Last != 7 {
		t.Errorf("after=7: %d entries, last %d", len(page.Writes), page.Last)
	}
	resp, err := http.Get(d.URL() + "/_emulator/writes?after=-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("after=-1: %s, want 400", resp.Status)
	}
}

func readWrites(t *testing.T, url string) identitydomain.WriteLog {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l identitydomain.WriteLog
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	return l
}
