package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/iamflow/iamflow/internal/app/config"
	idclient "github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/internal/scimserver"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/services/replicator"
)

// devPushSource is the pushed source `iamflow dev` configures beside its
// emulated domains: a SCIM endpoint on ingest's listener where anything
// that speaks SCIM (curl, an IdP's test tool) plays Okta or Entra ID, linked
// to the emulated target domain.
const (
	devPushSource = "idp"
	devPushLink   = "idp"
)

// devPush is the pushed source's address and token.
type devPush struct {
	base, token string
}

// addDevPush adds the pushed source to cfg, reached at ingestAddr, with a
// generated token written to a 0600 file in dir, and links it to tgt.
func addDevPush(cfg *config.Config, dir, ingestAddr string) (*devPush, error) {
	p := &devPush{token: randomHex(24)}
	tokenFile := filepath.Join(dir, "dev-push-token")
	if err := os.WriteFile(tokenFile, []byte(p.token), 0o600); err != nil {
		return nil, fmt.Errorf("write the dev push token: %w", err)
	}
	d := config.Domain{Name: devPushSource, Config: idclient.DefaultConfig(),
		Push: &scimserver.Push{Token: secret.Ref("file:" + tokenFile)}}
	d.URL = "http://" + ingestAddr
	cfg.Domains = append(cfg.Domains, cfg.PushedDomain(d))
	cfg.Replicator.Links = append(cfg.Replicator.Links, replicator.Link{Name: devPushLink, Source: devPushSource, Targets: []string{"tgt"}})
	p.base = d.URL + scimserver.DefaultPath(devPushSource)
	return p, nil
}

// banner prints the pushed source's lines of the dev banner.
func (p *devPush) banner(w io.Writer) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, `
  pushed source %q: a SCIM 2.0 endpoint an identity provider (Okta, Entra ID) pushes users and groups to;
  the replicator copies it into tgt (link %q)
    SCIM base URL  %s   bearer token %q

Push a user as an IdP would; it appears in tgt within a second:

  curl -sS -H 'Authorization: Bearer %s' -H 'Content-Type: application/scim+json' %s/Users -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"pat@example.com","name":{"givenName":"Pat","familyName":"Lee"},"active":true}'
`, devPushSource, devPushLink, p.base, p.token, p.token, p.base)
}
