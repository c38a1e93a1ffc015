package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
)

// checkDevDatabase follows the banner of `iamflow dev`: it adds a user to
// "DB Users" in the emulated source domain (with token, the dev admin
// client's), waits until the emulated database shows the user's account with
// APP_READER, and asks the admin API for the user's preview, which must be
// in step.
func checkDevDatabase(t *testing.T, banner, srcURL, token string) {
	t.Helper()
	users := regexp.MustCompile(`curl -sS '(http://\S+/_emulator/users\?db=devdb)'`).FindStringSubmatch(banner)
	preview := regexp.MustCompile(`curl -sS (http://\S+/v1/dbprovisioner/databases/devdb/users/)\S+`).FindStringSubmatch(banner)
	if users == nil || preview == nil || !strings.Contains(banner, `members of src group "DB Users" get an account with role APP_READER`) {
		t.Fatalf("banner does not show the emulated database:\n%s", banner)
	}
	scim := func(path, body string) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, srcURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		var v map[string]any
		if code, err := testutil.DoJSON(req, &v); err != nil || code != http.StatusCreated {
			t.Fatalf("POST %s: %d %v", path, code, err)
		}
		return v
	}
	user := scim("/admin/v1/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dana@example.com"}`)
	scim("/admin/v1/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"DB Users","members":[{"value":%q,"type":"User"}]}`, user["id"]))

	testutil.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get(users[1])
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var accounts []struct {
			Username      string   `json:"username"`
			AccountStatus string   `json:"accountStatus"`
			ExternalName  string   `json:"externalName"`
			Roles         []string `json:"roles"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&accounts); err != nil {
			return err
		}
		for _, a := range accounts {
			if a.Username == "DANA@EXAMPLE.COM" && a.AccountStatus == "OPEN" && a.ExternalName == "IAM_PRINCIPAL_NAME=src/dana@example.com" &&
				len(a.Roles) == 1 && a.Roles[0] == "APP_READER" {
				return nil
			}
		}
		return fmt.Errorf("no account DANA@EXAMPLE.COM with APP_READER in devdb yet: %+v", accounts)
	})
	resp, err := http.Get(preview[1] + "dana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"accountExists":true`) || !strings.Contains(string(b), `"statements":[]`) {
		t.Fatalf("preview of dana: %d %s", resp.StatusCode, b)
	}
}
