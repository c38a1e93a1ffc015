package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/iamflow/iamflow/internal/identitydomain"
)

// Pushed sources. A domains[] entry with push is a directory an identity
// provider pushes to ingest's SCIM endpoint at push.path with push.token.
// Every other service reads it like any domain, through the Identity
// Domains client pointed at that endpoint: fillPushDefaults gives the entry
// url (ingest's listener unless set), scim_path (push.path), auth static
// with the push token, and no client-side rate limit (the reads are local).
//
//	domains:
//	  - name: okta
//	    push:
//	      path: /scim/v2/okta          # default /scim/v2/<name>
//	      token: env:IAMFLOW_OKTA_SCIM_TOKEN
//	    # url: https://ingest.internal:8443   where other processes reach ingest

// fillPushDefaults fills the API settings of every pushed domain.
func (c *Config) fillPushDefaults() {
	for i := range c.Domains {
		c.Domains[i] = c.PushedDomain(c.Domains[i])
	}
}

// PushedDomain returns d with the API settings a pushed domain is read with
// (d unchanged when it is not pushed).
func (c *Config) PushedDomain(d Domain) Domain {
	if d.Push == nil {
		return d
	}
	if d.URL == "" {
		d.URL = ingestURL(c.Ingest.Listen, c.Ingest.TLS.CertFile != "")
	}
	d.SCIMPath = d.Push.PathOf(d.Name)
	if d.Auth == "" || d.Auth == identitydomain.AuthClientCredentials && d.ClientID == "" && d.ClientSecret.IsZero() {
		d.Auth = identitydomain.AuthStatic
	}
	if d.StaticToken.IsZero() {
		d.StaticToken = d.Push.Token
	}
	if d.Limits == (identitydomain.Limits{}) {
		d.Limits = identitydomain.Limits{PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1}
	}
	return d
}

// ingestURL is where processes on this host reach ingest's listener.
func ingestURL(listen string, tls bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// validatePushedDomains checks each pushed domain: its push section, that
// no other credentials are given, and that no two paths collide with each
// other or with ingest's event path.
func (c *Config) validatePushedDomains() []error {
	var errs []error
	paths := map[string]string{}
	for i, d := range c.Domains {
		if d.Push == nil {
			continue
		}
		key := fmt.Sprintf("domains[%d] %q", i, d.Name)
		if err := d.Push.Validate(d.Name); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errs = append(errs, fmt.Errorf("%s: push.%s", key, line))
			}
		}
		if d.ClientID != "" || !d.ClientSecret.IsZero() || d.OCIName != "" || d.ID != "" {
			errs = append(errs, fmt.Errorf("%s: a pushed source is no OCI domain: remove client_id, client_secret, oci_name and id (iamflow reads it with push.token)", key))
		}
		p := d.Push.PathOf(d.Name)
		if other, dup := paths[p]; dup {
			errs = append(errs, fmt.Errorf("%s: push.path: %q is also the path of %q", key, p, other))
		}
		paths[p] = d.Name
		if ip := strings.TrimRight(c.Ingest.Path, "/"); p == ip || strings.HasPrefix(p+"/", ip+"/") || strings.HasPrefix(ip+"/", p+"/") {
			errs = append(errs, fmt.Errorf("%s: push.path: %q overlaps ingest.path %q", key, p, c.Ingest.Path))
		}
		if err := d.Config.Validate(); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errs = append(errs, fmt.Errorf("%s: %s (reading the pushed source through ingest)", key, line))
			}
		}
	}
	return errs
}

// PushedSources lists the pushed domains as ingest serves them; tokens are
// resolved by the caller.
func (c *Config) PushedSources() []Domain {
	var out []Domain
	for _, d := range c.Domains {
		if d.Push != nil {
			out = append(out, d)
		}
	}
	return out
}
