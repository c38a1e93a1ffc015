package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
)

// checkDevPush follows the banner's pushed-source curl line: the user it
// creates through the SCIM endpoint reaches the emulated target domain.
func checkDevPush(t *testing.T, banner, tgtURL, tgtToken string) {
	t.Helper()
	m := regexp.MustCompile(`curl -sS -H 'Authorization: Bearer ([0-9a-f]+)' -H 'Content-Type: application/scim\+json' (http://\S+/scim/v2/idp/Users) -d '(.+)'`).FindStringSubmatch(banner)
	if m == nil || !strings.Contains(banner, `pushed source "idp"`) {
		t.Fatalf("banner has no pushed source curl line:\n%s", banner)
	}
	scimCreate(t, m[2], m[1], m[3], "the banner's SCIM push")
	testutil.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		return findsOne(tgtURL+`/admin/v1/Users?filter=userName+eq+%22pat%40example.com%22`, tgtToken, "pushed user")
	})
}
