package event

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

func TestSubject(t *testing.T) {
	tests := []struct {
		domain  string
		kind    iamflowv1.Kind
		action  iamflowv1.Action
		want    string
		wantErr string
	}{
		{"hub", iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_CREATED, "iam.event.hub.user.created", ""},
		{"spoke-2", iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_REMOVED, "iam.event.spoke-2.membership.member_removed", ""},
		{"hub", iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_CAPABILITIES_CHANGED, "iam.event.hub.user.capabilities_changed", ""},
		{"Hub", iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_CREATED, "", "not a valid short name"},
		{"a.b", iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_CREATED, "", "not a valid short name"},
		{"a*", iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_CREATED, "", "not a valid short name"},
		{"hub", iamflowv1.Kind_KIND_UNSPECIFIED, iamflowv1.Action_ACTION_CREATED, "", "kind"},
		{"hub", iamflowv1.Kind_KIND_GROUP, iamflowv1.Action_ACTION_UNSPECIFIED, "", "action"},
	}
	for _, tt := range tests {
		got, err := Subject(tt.domain, tt.kind, tt.action)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Subject(%q, %v, %v) error = %v, want %q", tt.domain, tt.kind, tt.action, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Subject(%q, %v, %v) = %q, %v; want %q", tt.domain, tt.kind, tt.action, got, err, tt.want)
		}
	}
}

func TestEveryKindAndActionHasAToken(t *testing.T) {
	for v, name := range iamflowv1.Kind_name {
		if k := iamflowv1.Kind(v); k != iamflowv1.Kind_KIND_UNSPECIFIED && KindToken(k) == "" {
			t.Errorf("%s has no subject token", name)
		}
	}
	for v, name := range iamflowv1.Action_name {
		if a := iamflowv1.Action(v); a != iamflowv1.Action_ACTION_UNSPECIFIED && ActionToken(a) == "" {
			t.Errorf("%s has no subject token", name)
		}
	}
}

func TestSubjectFilter(t *testing.T) {
	if got := SubjectFilter("", ""); got != "iam.event.*.*.*" {
		t.Errorf("all = %q", got)
	}
	if got := SubjectFilter("hub", "membership"); got != "iam.event.hub.membership.*" {
		t.Errorf("hub memberships = %q", got)
	}
}

func membership() *iamflowv1.IdentityEvent {
	return &iamflowv1.IdentityEvent{
		Id: "ev1", Domain: "hub", Kind: iamflowv1.Kind_KIND_MEMBERSHIP, Action: iamflowv1.Action_ACTION_MEMBER_ADDED,
		Type:     Type(iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED),
		Resource: &iamflowv1.Resource{Id: "g1", Name: "Admins"}, Related: &iamflowv1.Resource{Id: "u1"},
	}
}

func TestValidate(t *testing.T) {
	if err := Validate(membership()); err != nil {
		t.Fatalf("valid event: %v", err)
	}
	tests := map[string]func(e *iamflowv1.IdentityEvent){
		"id is empty":                    func(e *iamflowv1.IdentityEvent) { e.Id = "" },
		"not a valid short name":         func(e *iamflowv1.IdentityEvent) { e.Domain = "" },
		"resource has no id":             func(e *iamflowv1.IdentityEvent) { e.Resource = nil },
		"membership event names no user": func(e *iamflowv1.IdentityEvent) { e.Related = &iamflowv1.Resource{} },
	}
	for want, mutate := range tests {
		e := membership()
		mutate(e)
		if err := Validate(e); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate after %q: %v", want, err)
		}
	}
}

func TestEntityKey(t *testing.T) {
	e := membership()
	if got := EntityKey(e); got != "hub/membership/g1/u1" {
		t.Errorf("membership key = %q", got)
	}
	u := &iamflowv1.IdentityEvent{Domain: "hub", Kind: iamflowv1.Kind_KIND_USER, Resource: &iamflowv1.Resource{Ocid: "ocid1.user.oc1..x"}}
	if got := EntityKey(u); got != "hub/user/ocid1.user.oc1..x" {
		t.Errorf("user key by ocid = %q", got)
	}
	u.Resource = &iamflowv1.Resource{Name: "jane"}
	if got := EntityKey(u); got != "hub/user/name:jane" {
		t.Errorf("user key by name = %q", got)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	e := membership()
	b, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, e) {
		t.Fatalf("round trip changed the event: %v", got)
	}
	if _, err := Unmarshal([]byte{0xff, 0xff}); err == nil || !strings.Contains(err.Error(), "decode event") {
		t.Fatalf("garbage decoded: %v", err)
	}
}
