package cli

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/iamflow/iamflow/emulator/notifications"
	"github.com/iamflow/iamflow/internal/app/config"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/services/expiry/access"
)

// What dev mode's access policy needs in src: the developers who may
// request devTempGroup (the requester and the on-call user, and the
// approver, so that a self-approval can be tried and refused).
const (
	devDevelopers = "Engineering"
	devTopic      = "ocid1.onstopic.oc1.dev.aaaaaaaaaccessrequests"
	devTicket     = "INC-[0-9]+"
)

// devAccessPolicy is dev mode's access policy of devTempGroup: developers
// ask, the approvers decide, the on-call group is approved at once; a
// request says why, names an incident and lasts at most 2 hours.
func devAccessPolicy() access.Policy {
	return access.Policy{
		Domain: "src", Group: devTempGroup,
		Requesters:  access.Principals{Groups: []string{devDevelopers}},
		Approvers:   access.Principals{Groups: []string{devApprovers}},
		AutoApprove: access.Principals{Groups: []string{devOnCall}},
		MaxDuration: 2 * time.Hour, DefaultDuration: time.Hour, DecideWithin: time.Hour,
		Justification: true, Ticket: access.TicketRule{Required: true, Pattern: devTicket}, Extend: true,
	}
}

// devNotifications is dev mode's emulated OCI Notifications: the access
// workflow publishes to its topic through the SDK, signed with a key made
// for the run, and dev prints a line per message.
type devNotifications struct {
	emu *notifications.Emulator
	mu  sync.Mutex
	out io.Writer
}

// addDevAccess starts the emulated Notifications on addr and gives cfg the
// dev access policy and its notifications, when cfg has no access policy
// and dev added the temporary group.
func addDevAccess(cfg *config.Config, dir, addr string, log *slog.Logger) (*devNotifications, error) {
	if len(cfg.Expiry.Access.Policies) > 0 {
		return nil, nil
	}
	emu, err := notifications.New(notifications.Config{Topics: []notifications.Topic{{ID: devTopic, Name: "iamflow-access"}}},
		log.With("emulated", "notifications"))
	if err != nil {
		return nil, err
	}
	n := &devNotifications{emu: emu}
	emu.OnPublish(n.print)
	if err := emu.Start(addr); err != nil {
		return nil, fmt.Errorf("emulated OCI Notifications on %s: %w (set --notifications-addr)", addr, err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		_ = emu.Close()
		return nil, err
	}
	keyFile := filepath.Join(dir, "dev-notifications-key.pem")
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		_ = emu.Close()
		return nil, fmt.Errorf("write the dev notifications key: %w", err)
	}
	cfg.Expiry.Access.Policies = []access.Policy{devAccessPolicy()}
	cfg.Expiry.Access.Notify.OCI = access.OCINotify{TopicID: devTopic, Endpoint: emu.URL(), Auth: "api_key",
		APIKey: access.APIKey{Tenancy: "ocid1.tenancy.oc1..dev", User: "ocid1.user.oc1..dev",
			Fingerprint: "11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00", PrivateKey: secret.Ref("file:" + keyFile)}}
	cfg.Expiry.Access.ScanInterval = 2 * time.Second // a 2-minute request ends on time in the console too
	return n, nil
}

// printTo starts printing published messages to w.
func (n *devNotifications) printTo(w io.Writer) {
	if n == nil {
		return
	}
	n.mu.Lock()
	n.out = w
	n.mu.Unlock()
}

func (n *devNotifications) print(m notifications.Message) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.out != nil {
		fmt.Fprintf(n.out, "%s  %-13s  published %q to OCI Notifications (topic iamflow-access)\n", m.At.Local().Format("15:04:05.000"), "notify", m.Title)
	}
}

func (n *devNotifications) close() {
	if n != nil {
		_ = n.emu.Close()
	}
}

// banner prints the access-request lines of the dev banner.
func (n *devNotifications) banner(w io.Writer, src, grpcAddr string) {
	if n == nil {
		return
	}
	fmt.Fprintf(w, `
Ask for temporary access as a developer and decide it as an approver (policy: %s in src,
asked by %s, approved by %s, %s approved at once; notifications go to the emulated
OCI Notifications, %s/_emulator/messages):

  go run ./cmd/iamflow login --domain-url %s --client-id %s        (as %s)
  go run ./cmd/iamflow request %s --for 2m --reason "INC-1 disk full" --ticket INC-1 --addr %s
  go run ./cmd/iamflow login --domain-url %s --client-id %s        (as %s)
  go run ./cmd/iamflow requests --waiting --addr %s
  go run ./cmd/iamflow approve ID --addr %s
`, devTempGroup, devDevelopers, devApprovers, devOnCall, n.emu.URL(),
		src, devLoginClient, devRequester, devTempGroup, grpcAddr, src, devLoginClient, devApprover, grpcAddr, grpcAddr)
}
