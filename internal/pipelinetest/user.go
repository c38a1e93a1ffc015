package pipelinetest

import (
	"context"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// CreateUser creates the user userName through c (an administrator's
// client) as a person would enter one: given name "Test", family name
// userName, a primary work email userName@example.com; edit, if given,
// changes the user before it is sent. It returns the user's id; an error
// fails the test.
func CreateUser(t testing.TB, c *identitydomain.Client, userName string, edit ...func(*identitydomains.User)) string {
	t.Helper()
	u := identitydomains.User{
		UserName: new(userName),
		Name:     &identitydomains.UserName{GivenName: new("Test"), FamilyName: new(userName)},
		Emails: []identitydomains.UserEmails{{Value: new(userName + "@example.com"), Type: identitydomains.UserEmailsTypeWork,
			Primary: new(true)}},
	}
	for _, e := range edit {
		e(&u)
	}
	created, _, err := c.CreateUser(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return *created.Id
}
