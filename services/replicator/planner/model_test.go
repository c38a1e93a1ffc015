package planner

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

func TestFromSDKUser(t *testing.T) {
	const body = `{
	  "id": "u1", "externalId": "x1", "userName": "ana@example.com", "displayName": "Ana",
	  "name": {"givenName": "Ana", "familyName": "Lima"},
	  "emails": [{"value": "me@home.example", "type": "recovery"},
	             {"value": "ana@example.com", "type": "work", "primary": true},
	             {"value": "ana@home.example", "type": "home"}],
	  "urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User": {"isFederatedUser": true},
	  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops", "costCenter": ""},
	  "groups": [{"value": "g2"}, {"value": "g1"}]
	}`
	var u identitydomains.User
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatal(err)
	}
	got := FromSDKUser(u)
	want := UserState{ID: "u1", ExternalID: "x1", UserName: "ana@example.com", DisplayName: "Ana", GivenName: "Ana", FamilyName: "Lima",
		Emails:    []Email{{Value: "ana@home.example", Type: "home"}, {Value: "ana@example.com", Type: "work", Primary: true}},
		Active:    true, // absent reads as active
		Federated: true, Custom: map[string]string{"department": "Ops"}, Groups: []string{"g1", "g2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromSDKUser =\n%+v\nwant\n%+v", got, want)
	}
}

func TestUserRoundTrip(t *testing.T) {
	s := UserState{UserName: "ana", ExternalID: "s1", DisplayName: "Ana", GivenName: "Ana", FamilyName: "Lima",
		Emails: []Email{{Value: "a@x", Type: "work", Primary: true}}, Active: false, Custom: map[string]string{"costCenter": "42"}}
	b, err := json.Marshal(s.SDKUser())
	if err != nil {
		t.Fatal(err)
	}
	var u identitydomains.User
	if err := json.Unmarshal(b, &u); err != nil {
		t.Fatal(err)
	}
	if got := FromSDKUser(u); !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip =\n%+v\nwant\n%+v\nbody %s", got, s, b)
	}
}

func TestFromSDKGroupAndBack(t *testing.T) {
	const body = `{"id": "g1", "displayName": "Ops", "externalId": "s-g1",
	  "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group": {"description": "on call"},
	  "members": [{"value": "u2", "type": "User"}, {"value": "u1", "type": "User"}, {"value": "u1", "type": "User"}]}`
	var g identitydomains.Group
	if err := json.Unmarshal([]byte(body), &g); err != nil {
		t.Fatal(err)
	}
	got := FromSDKGroup(g)
	want := GroupState{ID: "g1", ExternalID: "s-g1", DisplayName: "Ops", Description: "on call", Members: []string{"u1", "u2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromSDKGroup = %+v", got)
	}
	back := want.SDKGroup()
	if str(back.DisplayName) != "Ops" || str(back.ExternalId) != "s-g1" || back.Id != nil || back.Members != nil ||
		str(back.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup.Description) != "on call" {
		t.Fatalf("SDKGroup = %+v", back)
	}
	if (GroupState{DisplayName: "x"}).SDKGroup().UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup != nil {
		t.Error("an empty description sends the extension")
	}
}
