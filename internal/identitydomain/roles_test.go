package identitydomain_test

import (
	"slices"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

func TestGroupNames(t *testing.T) {
	s := func(v string) *string { return &v }
	u := identitydomains.User{Groups: []identitydomains.UserGroups{{Display: s("Admins")}, {Value: s("g2")}, {Display: s("")}, {Display: s("Readers")}}}
	if got := identitydomain.GroupNames(u); !slices.Equal(got, []string{"Admins", "Readers"}) {
		t.Fatalf("GroupNames = %v, want [Admins Readers]", got)
	}
	if got := identitydomain.GroupNames(identitydomains.User{}); got == nil || len(got) != 0 {
		t.Fatalf("GroupNames of a user read without groups = %#v, want empty, not nil", got)
	}
}
