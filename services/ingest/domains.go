package ingest

import (
	"net"
	"net/url"
	"strings"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// Domain tells ingest how to recognise one configured identity domain in the
// events OCI sends, which name it by display name, by id, or by URL.
type Domain struct {
	// Name is the short name used in subjects (iam.event.<name>.…).
	Name string
	// OCIName is the domain's name as OCI reports it (domainName), e.g. "Default".
	OCIName string
	// ID is the domain's OCID or IDCS id (domainId).
	ID string
	// URL is the domain URL, https://idcs-….identity.oraclecloud.com.
	URL string
}

// defaultDomainName is what OCI calls the domain that pre-domain (legacy IAM)
// tenancies were migrated into; legacy payloads name no domain at all.
const defaultDomainName = "default"

type domainIndex struct {
	byID, byHost, byName map[string]string
}

func newDomainIndex(domains []Domain) domainIndex {
	ix := domainIndex{byID: map[string]string{}, byHost: map[string]string{}, byName: map[string]string{}}
	for _, d := range domains {
		if d.ID != "" {
			ix.byID[strings.ToLower(d.ID)] = d.Name
		}
		if h := urlHost(d.URL); h != "" {
			ix.byHost[h] = d.Name
		}
		if d.OCIName != "" {
			ix.byName[strings.ToLower(d.OCIName)] = d.Name
		}
	}
	return ix
}

// resolve maps the domain fields of an event to a configured short name. An
// event that names no domain at all (legacy IAM payloads) belongs to the
// domain OCI calls "Default", if one is configured.
func (ix domainIndex) resolve(e *iamflowv1.IdentityEvent) (string, bool) {
	if id := strings.ToLower(e.GetOciDomainId()); id != "" {
		if n, ok := ix.byID[id]; ok {
			return n, true
		}
	}
	if h := urlHost(e.GetOciDomainUrl()); h != "" {
		if n, ok := ix.byHost[h]; ok {
			return n, true
		}
	}
	if name := strings.ToLower(e.GetOciDomainName()); name != "" {
		n, ok := ix.byName[name]
		return n, ok
	}
	if e.GetOciDomainId() == "" && e.GetOciDomainUrl() == "" {
		n, ok := ix.byName[defaultDomainName]
		return n, ok
	}
	return "", false
}

// domainLabel is how an unknown domain is named in logs and counters.
func domainLabel(e *iamflowv1.IdentityEvent) string {
	for _, s := range []string{e.GetOciDomainName(), e.GetOciDomainId(), urlHost(e.GetOciDomainUrl())} {
		if s != "" {
			return s
		}
	}
	return "(none)"
}

// urlHost is the host of a domain URL as ingest matches it: lower case, with
// the port when it is not the scheme's default, so https://h and
// https://h:443 are one domain while two domains on one host (emulators on
// loopback) stay apart.
func urlHost(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	switch {
	case port == "",
		port == "443" && (u.Scheme == "https" || u.Scheme == ""),
		port == "80" && u.Scheme == "http":
		return host
	}
	return net.JoinHostPort(host, port)
}
