package ingest

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/servicekit"
	"github.com/iamflow/iamflow/internal/testutil"
)

// During a rotation the new and the previous password both authenticate
// (one subscription per password delivers until the old one is deleted); any
// other password, or a right password with the wrong user, does not, and no
// password reaches the log.
func TestPreviousPasswordAcceptedDuringRotation(t *testing.T) {
	const previous = "the-old-webhook-password-being-rotated-out"
	const third = "a-password-that-was-never-configured"
	t.Setenv("IAMFLOW_TEST_PREVIOUS_PASSWORD", previous)
	var logs testutil.SyncBuffer
	h := newHarness(t, func(c *Config) { c.PreviousPassword = "env:IAMFLOW_TEST_PREVIOUS_PASSWORD" },
		servicekit.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))

	for i, tc := range []struct {
		user, pass string
		want       int
	}{
		{"iamflow", testPassword, http.StatusAccepted},
		{"iamflow", previous, http.StatusAccepted},
		{"iamflow", third, http.StatusUnauthorized},
		{"iamflow", previous[:10], http.StatusUnauthorized},
		{"admin", previous, http.StatusUnauthorized},
		{"iamflow", "", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodPost, h.url(), strings.NewReader(addUserToGroup("ev-rot-"+string(rune('a'+i)), "Default")))
		req.SetBasicAuth(tc.user, tc.pass)
		if code, out, _ := do(t, req); code != tc.want {
			t.Errorf("user %q, password #%d: %d %v, want %d", tc.user, i, code, out, tc.want)
		}
	}
	if n := len(h.stored()); n != 2 {
		t.Errorf("stored %d events, want the 2 authenticated ones", n)
	}
	for _, secret := range []string{testPassword, previous, third} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a password is in the log:\n%s", logs.String())
		}
	}
}

// Without previous_password the old password is just wrong.
func TestWithoutPreviousPasswordOnlyTheCurrentOneWorks(t *testing.T) {
	h := newHarness(t, nil)
	req, _ := http.NewRequest(http.MethodPost, h.url(), strings.NewReader(addUserToGroup("ev-old", "Default")))
	req.SetBasicAuth("iamflow", "the-old-webhook-password-being-rotated-out")
	if code, _, _ := do(t, req); code != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", code)
	}
}

func TestPreviousPasswordValidation(t *testing.T) {
	for _, tc := range []struct {
		name, previous, want string
	}{
		{"literal", "hunter2-literal", "previous_password: not a secret reference"},
		{"same as password", "env:IAMFLOW_WEBHOOK_PASSWORD", "previous_password: the same reference as password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Password = "env:IAMFLOW_WEBHOOK_PASSWORD"
			cfg.PreviousPassword = secret.Ref(tc.previous)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the literal: %v", err)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Password, cfg.PreviousPassword = "env:A", "file:/run/secrets/old-webhook"
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid rotation refused: %v", err)
	}
	// A reference that cannot be resolved stops New, naming the key, not the value.
	t.Setenv("IAMFLOW_TEST_CURRENT_PASSWORD", testPassword)
	cfg.Password = "env:IAMFLOW_TEST_CURRENT_PASSWORD"
	cfg.PreviousPassword = "env:IAMFLOW_TEST_UNSET_PREVIOUS_PASSWORD"
	_, err := New(context.Background(), cfg, newHarness(t, nil).bus, Webhook{})
	if err == nil || !strings.Contains(err.Error(), "ingest previous_password") {
		t.Errorf("New with an unset previous_password: %v", err)
	}
}
