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
