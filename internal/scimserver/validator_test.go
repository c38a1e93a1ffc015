package scimserver

import (
	"net/http"
	"testing"

	elimity "github.com/elimity-com/scim/schema"
)

// TestResourcesPassAnotherValidator checks what the endpoint answers with a
// SCIM schema validator written elsewhere (github.com/elimity-com/scim's
// RFC 7643 core and enterprise schemas): every user and group the IdP
// fixtures leave behind, as the endpoint lists them.
func TestResourcesPassAnotherValidator(t *testing.T) {
	forEachIdP(t, func(t *testing.T, h *harness) {
		for _, tc := range []struct {
			path   string
			schema elimity.Schema
			exts   []elimity.Schema
		}{
			{"/Users", elimity.CoreUserSchema(), []elimity.Schema{elimity.ExtensionEnterpriseUser()}},
			{"/Groups", elimity.CoreGroupSchema(), nil},
		} {
			list := h.must(http.StatusOK, "GET", tc.path, nil)["Resources"].([]any)
			if len(list) == 0 {
				t.Fatalf("%s: nothing to validate", tc.path)
			}
			for _, r := range list {
				res := r.(map[string]any)
				if _, err := tc.schema.Validate(res); err != nil {
					t.Errorf("%s %s: %v", tc.path, res["id"], err)
				}
				for _, ext := range tc.exts {
					if v, ok := res[ext.ID].(map[string]any); ok {
						if _, err := ext.ValidateExtension(v); err != nil {
							t.Errorf("%s %s extension: %v", tc.path, res["id"], err)
						}
					}
				}
			}
		}
	})
}
