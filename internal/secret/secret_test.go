package secret

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Setenv("IAMFLOW_TEST_SECRET", "s3cr3t")
	t.Setenv("IAMFLOW_TEST_EMPTY", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref     Ref
		want    string
		wantErr string
	}{
		{ref: "env:IAMFLOW_TEST_SECRET", want: "s3cr3t"},
		{ref: Ref("file:" + file), want: "from-file"},
		{ref: "env:IAMFLOW_TEST_UNSET", wantErr: "IAMFLOW_TEST_UNSET is not set"},
		{ref: "env:IAMFLOW_TEST_EMPTY", wantErr: "IAMFLOW_TEST_EMPTY is set but empty"},
		{ref: Ref("file:" + empty), wantErr: "the file is empty"},
		{ref: "file:relative", wantErr: "absolute"},
		{ref: "hunter2", wantErr: "literal secrets are not accepted"},
		{ref: "pass:hunter2", wantErr: "unknown secret reference scheme"},
		{ref: "vault:ocid1.vaultsecret.oc1..x", wantErr: "unsupported"},
		{ref: "vault:nope", wantErr: "expected a secret OCID"},
	}
	for _, tt := range tests {
		t.Run(string(tt.ref), func(t *testing.T) {
			v, err := Resolve(context.Background(), tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q) error = %v, want one containing %q", tt.ref, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error reveals the literal: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Reveal() != tt.want {
				t.Fatalf("Reveal() = %q, want %q", v.Reveal(), tt.want)
			}
		})
	}
}

func TestValueNeverPrints(t *testing.T) {
	v := NewValue("s3cr3t")
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "password", v)
	j, _ := json.Marshal(struct{ P Value }{v})
	for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s", v, v, v, v), logs.String(), string(j)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("secret leaked: %s", s)
		}
	}
}

// Require names the key and the fix for an empty reference, the key and
// Validate's reason for a malformed one, and never the text of a literal.
func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		ref  Ref
		want string
	}{
		{"", "client_secret: empty; set a reference"},
		{"hunter2", "client_secret: not a secret reference: write env:NAME, file:/path or vault:<secret ocid> (literal secrets are not accepted)"},
		{"env:A B", `client_secret: env reference "A B": not a valid variable name`},
		{"env:IAMFLOW_SECRET", ""},
	} {
		err := tc.ref.Require("client_secret", "set a reference")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v, want nil", tc.ref, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%q: %v, want %q", tc.ref, err, tc.want)
		}
	}
}
