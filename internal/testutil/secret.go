package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/iamflow/iamflow/internal/secret"
)

// SecretFile writes v to a file of its own in a test directory and returns
// the reference to it ("file:..."), as a configuration names a secret.
func SecretFile(t testing.TB, v string) secret.Ref {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref("file:" + p)
}
