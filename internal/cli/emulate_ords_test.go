package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/dbprovisioner"
)

// TestEmulateORDS runs `iamflow emulate ords` with a seed and talks to it
// the way the DB provisioner does: OAuth client credentials, then catalog
// queries through REST-enabled SQL.
func TestEmulateORDS(t *testing.T) {
	t.Setenv("IAMFLOW_TEST_ORDS_SECRET", "s3cret-ords-client")
	seed := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(seed, []byte("databases:\n  - alias: db2\n    roles: [{name: APP_READER}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testutil.SyncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- Run(ctx, []string{"emulate", "ords", "--addr", "127.0.0.1:0", "--client-id", "dbp",
			"--client-secret", "env:IAMFLOW_TEST_ORDS_SECRET", "--seed", seed, "db1", "db2"}, &out, &errOut)
	}()
	var m [][]string
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "OAuth client") {
			return io.ErrNoProgress
		}
		m = regexp.MustCompile(`ords database (\S+) +(http://\S+/ords/\S+) +\((\d+) users, (\d+) roles\)`).FindAllStringSubmatch(out.String(), -1)
		return nil
	})
	if len(m) != 2 || m[0][1] != "db1" || m[1][1] != "db2" || m[1][4] != "1" || !strings.HasSuffix(m[1][2], "/ords/db2") {
		t.Fatalf("databases: %v\n%s%s", m, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), `id "dbp" secret "(from --client-secret)"`) || strings.Contains(out.String(), "s3cret") {
		t.Fatalf("client line:\n%s", out.String())
	}
	for _, db := range m {
		cfg := ords.DefaultConfig()
		cfg.URL, cfg.ClientID, cfg.ClientSecret = db[2], "dbp", "env:IAMFLOW_TEST_ORDS_SECRET"
		c, err := ords.New(context.Background(), db[1], cfg)
		if err != nil {
			t.Fatal(err)
		}
		role, _ := ords.Ident("APP_READER")
		exists, err := dbprovisioner.NewDatabase(c).RoleExists(context.Background(), role)
		c.Close()
		if err != nil || exists != (db[1] == "db2") {
			t.Errorf("%s: role APP_READER exists = %v, %v; want it seeded in db2 only", db[1], exists, err)
		}
	}
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("emulate ords exited %d: %s", code, errOut.String())
	}
	for _, args := range [][]string{{"emulate", "ords"}, {"emulate", "ords", "--addr", "127.0.0.1:0", "Bad Alias"}} {
		if code, _, stderr := run(t, args...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, %q; want a usage error", args, code, stderr)
		}
	}
	if code, _, stderr := run(t, "emulate", "ords", "--addr", "127.0.0.1:0", "--seed", "/nonexistent.yaml", "db1"); code != 1 || !strings.Contains(stderr, "nonexistent.yaml") {
		t.Errorf("missing seed: exit %d, %q", code, stderr)
	}
}
