package identitydomain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Discovery (RFC 7644 §4): what a domain says it supports, read from
// /ServiceProviderConfig, /ResourceTypes and /Schemas/{id} under the SCIM
// path, at first use and again when older than Config.DiscoveryInterval.
// Identity domains answer /ServiceProviderConfig with a ListResponse holding
// the one configuration; other servers with the object itself: both are
// read. A server that does not serve discovery (404, 501, an answer that is
// not SCIM) gets Capabilities{Discovered: false}, under which everything is
// assumed supported and declared: iamflow then learns from the answers to
// its writes instead.

// BulkSupport is the bulk section of a ServiceProviderConfig.
type BulkSupport struct {
	// Supported: the server accepts POST /Bulk.
	Supported bool
	// MaxOperations and MaxPayloadSize bound one bulk request (0: not said).
	MaxOperations, MaxPayloadSize int
}

// Capabilities is what a domain has shown it supports.
type Capabilities struct {
	// Discovered is false when the server did not answer discovery; then
	// every feature and attribute is assumed.
	Discovered bool
	// ReadAt is when the discovery was read.
	ReadAt time.Time
	// ETag, Filter, Sort, Patch and ChangePassword are the supported flags
	// of the ServiceProviderConfig (all true when not Discovered).
	ETag, Filter, Sort, Patch, ChangePassword bool
	// Bulk is the bulk section of the ServiceProviderConfig (not supported
	// when not Discovered: iamflow never assumes Bulk).
	Bulk BulkSupport
	// FilterMaxResults is the most resources a filtered query returns, 0
	// when not said.
	FilterMaxResults int

	// attrs holds, per lower-case resource type name ("user", "group"), the
	// lower-case attribute paths its schemas declare; nil when the resource
	// types or schemas were not read (everything assumed).
	attrs map[string]*declared
}

// declared is the attribute paths of one resource type.
type declared struct {
	schemas []string        // lower-case schema URNs, core first, then longest first
	paths   map[string]bool // "displayname", "name.givenname", "<urn>:department"; value: complex with no sub-attributes listed
}

// commonAttributes are the attributes every resource has (RFC 7643 §3.1),
// which servers rarely list in their schemas.
var commonAttributes = map[string]bool{"id": true, "externalid": true, "meta": true, "schemas": true}

// Declares reports whether the server declares the attribute path for the
// resource type ("User" or "Group"): "displayName", "name.givenName",
// "emails", "members", "groups", or a full extension path such as
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department".
// A value filter in the path (emails[type eq "work"].value) is ignored.
// Names compare case-insensitively. It is true when the server was not
// Discovered or did not describe its resource types, and for the common
// attributes id, externalId and meta.
func (c Capabilities) Declares(resource, path string) bool {
	if !c.Discovered || c.attrs == nil {
		return true
	}
	d := c.attrs[strings.ToLower(resource)]
	if d == nil {
		return false
	}
	p := stripValueFilters(strings.ToLower(strings.TrimSpace(path)))
	if strings.HasPrefix(p, "urn:") {
		for _, urn := range d.schemas {
			if p == urn {
				return true
			}
			if rest, ok := strings.CutPrefix(p, urn+":"); ok {
				if urn == d.schemas[0] {
					return d.has(rest) // the core schema, written in full
				}
				return d.has(urn + ":" + rest)
			}
		}
		return false
	}
	return d.has(p)
}

func (d *declared) has(p string) bool {
	head, _, _ := strings.Cut(p, ".")
	if commonAttributes[head] {
		return true
	}
	if _, ok := d.paths[p]; ok {
		return true
	}
	// A sub-attribute of a complex attribute listed without its sub-attributes.
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '.' {
			if open, ok := d.paths[p[:i]]; ok {
				return open
			}
		}
	}
	return false
}

// stripValueFilters removes [...] value filters from a path.
func stripValueFilters(p string) string {
	for {
		i := strings.IndexByte(p, '[')
		if i < 0 {
			return p
		}
		j := strings.IndexByte(p[i:], ']')
		if j < 0 {
			return p[:i]
		}
		p = p[:i] + p[i+j+1:]
	}
}

// assumed is the Capabilities of a server that did not answer discovery.
func assumed(at time.Time) Capabilities {
	return Capabilities{ReadAt: at, ETag: true, Filter: true, Sort: true, Patch: true, ChangePassword: true}
}

// DefaultDiscoveryInterval is how often discovery is read again by default.
const DefaultDiscoveryInterval = time.Hour

// Capabilities returns what the domain has shown it supports, read at first
// use and again once older than Config.DiscoveryInterval (concurrent callers
// wait for one read). The error is only for a domain that could not be
// reached at all (network, 5xx, 429, refused credentials) and had never been
// read; a failed refresh keeps the last answer.
func (c *Client) Capabilities(ctx context.Context) (Capabilities, error) {
	interval := c.cfg.DiscoveryInterval
	if interval <= 0 {
		interval = DefaultDiscoveryInterval
	}
	fresh := func() (Capabilities, bool) {
		p := c.caps.Load()
		if p != nil && c.clock.Now().Sub(p.ReadAt) < interval {
			return *p, true
		}
		return Capabilities{}, false
	}
	if caps, ok := fresh(); ok {
		return caps, nil
	}
	c.capsMu.Lock()
	defer c.capsMu.Unlock()
	if caps, ok := fresh(); ok {
		return caps, nil
	}
	caps, err := c.discover(ctx)
	if err != nil {
		if p := c.caps.Load(); p != nil {
			c.log.WarnContext(ctx, "identity domain discovery refresh failed; keeping the last answer", "domain", c.domain, "error", err)
			return *p, nil
		}
		return Capabilities{}, fmt.Errorf("discover the capabilities of %s: %w", c.domain, err)
	}
	if prev := c.caps.Load(); prev == nil || prev.Discovered != caps.Discovered {
		if caps.Discovered {
			c.log.InfoContext(ctx, "identity domain capabilities discovered", "domain", c.domain, "etag", caps.ETag,
				"filter", caps.Filter, "sort", caps.Sort, "patch", caps.Patch, "bulk", caps.Bulk.Supported,
				"resource_types_described", caps.attrs != nil)
		} else {
			c.log.WarnContext(ctx, "identity domain does not serve SCIM discovery; assuming every feature and attribute", "domain", c.domain)
		}
	}
	c.caps.Store(&caps)
	return caps, nil
}

// unreachable reports whether err means the domain could not be asked at all.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	k, ok := kindOf(err)
	return !ok || k == KindUnavailable || k == KindRateLimited || k == KindUnauthorized
}

// spcDoc is a ServiceProviderConfig (RFC 7643 §5), or a ListResponse
// holding one (identity domains).
type spcDoc struct {
	Schemas []string          `json:"schemas"`
	Patch   *supportedDoc     `json:"patch"`
	Bulk    *bulkDoc          `json:"bulk"`
	Filter  *filterDoc        `json:"filter"`
	Change  *supportedDoc     `json:"changePassword"`
	Sort    *supportedDoc     `json:"sort"`
	ETag    *supportedDoc     `json:"etag"`
	List    []json.RawMessage `json:"Resources"`
}

type supportedDoc struct {
	Supported bool `json:"supported"`
}

type bulkDoc struct {
	Supported      bool `json:"supported"`
	MaxOperations  int  `json:"maxOperations"`
	MaxPayloadSize int  `json:"maxPayloadSize"`
}

type filterDoc struct {
	Supported  bool `json:"supported"`
	MaxResults int  `json:"maxResults"`
}

// resourceTypeDoc is a ResourceType (RFC 7643 §6).
type resourceTypeDoc struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Endpoint   string `json:"endpoint"`
	Schema     string `json:"schema"`
	Extensions []struct {
		Schema string `json:"schema"`
	} `json:"schemaExtensions"`
}

// schemaDoc is a Schema (RFC 7643 §7).
type schemaDoc struct {
	ID         string         `json:"id"`
	Attributes []attributeDoc `json:"attributes"`
}

type attributeDoc struct {
	Name          string         `json:"name"`
	Type          string         `json:"type"`
	SubAttributes []attributeDoc `json:"subAttributes"`
}

// listOf reads a body that is a ListResponse, a bare JSON array, or a
// single object, as a list.
func listOf(body []byte) ([]json.RawMessage, error) {
	var list struct {
		Resources []json.RawMessage `json:"Resources"`
	}
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "[") {
		var arr []json.RawMessage
		err := json.Unmarshal(body, &arr)
		return arr, err
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, err
	}
	if list.Resources != nil {
		return list.Resources, nil
	}
	return []json.RawMessage{body}, nil
}

// discover reads the three discovery endpoints.
func (c *Client) discover(ctx context.Context) (Capabilities, error) {
	now := c.clock.Now()
	body, err := c.getRaw(ctx, "GetServiceProviderConfig", "/ServiceProviderConfig")
	if err != nil {
		if unreachable(err) {
			return Capabilities{}, err
		}
		c.log.DebugContext(ctx, "no ServiceProviderConfig", "domain", c.domain, "error", err)
		return assumed(now), nil
	}
	caps, ok := parseServiceProviderConfig(body, now)
	if !ok {
		c.log.DebugContext(ctx, "ServiceProviderConfig is not SCIM", "domain", c.domain)
		return assumed(now), nil
	}
	attrs, err := c.discoverAttributes(ctx)
	switch {
	case err != nil && unreachable(err):
		return Capabilities{}, err
	case err != nil:
		c.log.WarnContext(ctx, "identity domain does not describe its resource types; assuming every attribute", "domain", c.domain, "error", err)
	default:
		caps.attrs = attrs
	}
	return caps, nil
}

// parseServiceProviderConfig reads a ServiceProviderConfig, or a
// ListResponse holding one; false when the body is not one.
func parseServiceProviderConfig(body []byte, now time.Time) (Capabilities, bool) {
	var spc spcDoc
	err := json.Unmarshal(body, &spc)
	if err == nil && len(spc.List) > 0 {
		var inner spcDoc
		err = json.Unmarshal(spc.List[0], &inner)
		spc = inner
	}
	if err != nil || (spc.Patch == nil && spc.Filter == nil && spc.ETag == nil && spc.Sort == nil && spc.Bulk == nil) {
		return Capabilities{}, false
	}
	caps := Capabilities{Discovered: true, ReadAt: now,
		ETag: flag(spc.ETag), Filter: flag(spc.Filter), Sort: flag(spc.Sort), Patch: flag(spc.Patch), ChangePassword: flag(spc.Change)}
	if spc.Filter != nil {
		caps.FilterMaxResults = max(spc.Filter.MaxResults, 0)
	}
	if spc.Bulk != nil {
		caps.Bulk = BulkSupport{Supported: spc.Bulk.Supported, MaxOperations: max(spc.Bulk.MaxOperations, 0), MaxPayloadSize: max(spc.Bulk.MaxPayloadSize, 0)}
	}
	return caps, true
}

type supportFlag interface{ supported() bool }

func (s *supportedDoc) supported() bool { return s != nil && s.Supported }
func (f *filterDoc) supported() bool    { return f != nil && f.Supported }

func flag(s supportFlag) bool { return s.supported() }

// discoverAttributes reads the User and Group resource types and their
// schemas.
func (c *Client) discoverAttributes(ctx context.Context) (map[string]*declared, error) {
	types, err := c.discoverResourceTypes(ctx)
	if err != nil {
		return nil, err
	}
	sr := &schemaReader{c: c, schemas: map[string]*schemaDoc{}}
	out := map[string]*declared{}
	for name, rt := range types {
		if rt.Schema == "" {
			return nil, fmt.Errorf("resource type %s has no schema", name)
		}
		d, err := sr.declaredOf(ctx, rt)
		if err != nil {
			return nil, err
		}
		out[name] = d
	}
	return out, nil
}

// discoverResourceTypes reads /ResourceTypes and returns the User and Group
// types ("user", "group") it names, by name or by endpoint.
func (c *Client) discoverResourceTypes(ctx context.Context) (map[string]resourceTypeDoc, error) {
	body, err := c.getRaw(ctx, "ListResourceTypes", "/ResourceTypes")
	if err != nil {
		return nil, err
	}
	raws, err := listOf(body)
	if err != nil {
		return nil, fmt.Errorf("ResourceTypes: %w", err)
	}
	types := map[string]resourceTypeDoc{}
	for _, raw := range raws {
		var rt resourceTypeDoc
		if json.Unmarshal(raw, &rt) != nil {
			continue
		}
		name := rt.Name
		if name == "" {
			name = rt.ID
		}
		switch {
		case strings.EqualFold(name, "User") || strings.EqualFold(strings.Trim(rt.Endpoint, "/"), "Users"):
			types["user"] = rt
		case strings.EqualFold(name, "Group") || strings.EqualFold(strings.Trim(rt.Endpoint, "/"), "Groups"):
			types["group"] = rt
		}
	}
	if len(types) == 0 {
		return nil, errors.New("ResourceTypes names neither User nor Group")
	}
	return types, nil
}

// schemaReader reads schemas one by one (/Schemas/{id}) and, from a server
// that does not serve them so, the whole list once (/Schemas).
type schemaReader struct {
	c       *Client
	schemas map[string]*schemaDoc // by lower-case id
	listed  bool
}

// declaredOf is what a resource type declares: the attributes of its schema
// and its extensions', the extensions' paths prefixed by their URN.
func (sr *schemaReader) declaredOf(ctx context.Context, rt resourceTypeDoc) (*declared, error) {
	d := &declared{paths: map[string]bool{}}
	urns := []string{rt.Schema}
	for _, e := range rt.Extensions {
		if e.Schema != "" {
			urns = append(urns, e.Schema)
		}
	}
	for i, urn := range urns {
		s, err := sr.get(ctx, urn)
		if err != nil {
			return nil, err
		}
		lurn := strings.ToLower(urn)
		d.schemas = append(d.schemas, lurn)
		prefix := ""
		if i > 0 {
			prefix = lurn + ":"
		}
		for _, a := range s.Attributes {
			addAttribute(d.paths, prefix, a)
		}
	}
	// Extensions longest first, so a URN that prefixes another matches last.
	slices.SortStableFunc(d.schemas[1:], func(a, b string) int { return len(b) - len(a) })
	return d, nil
}

// get returns the schema urn: already read, read on its own, or, when the
// server has no /Schemas/{id}, from the list.
func (sr *schemaReader) get(ctx context.Context, urn string) (*schemaDoc, error) {
	if s, ok := sr.schemas[strings.ToLower(urn)]; ok {
		return s, nil
	}
	if !sr.listed {
		body, err := sr.c.getRaw(ctx, "GetSchema", "/Schemas/"+url.PathEscape(urn))
		if err == nil {
			var s schemaDoc
			if err := json.Unmarshal(body, &s); err != nil {
				return nil, fmt.Errorf("schema %s: %w", urn, err)
			}
			if s.ID == "" {
				s.ID = urn
			}
			sr.schemas[strings.ToLower(urn)] = &s
			return &s, nil
		}
		if unreachable(err) {
			return nil, err
		}
		// No /Schemas/{id}: read the list once.
		sr.listed = true
		if err := sr.readList(ctx); err != nil {
			return nil, err
		}
	}
	if s, ok := sr.schemas[strings.ToLower(urn)]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("schema %s is not served", urn)
}

// readList reads every schema /Schemas lists.
func (sr *schemaReader) readList(ctx context.Context) error {
	body, err := sr.c.getRaw(ctx, "ListSchemas", "/Schemas")
	if err != nil {
		return err
	}
	raws, err := listOf(body)
	if err != nil {
		return fmt.Errorf("Schemas: %w", err)
	}
	for _, raw := range raws {
		var s schemaDoc
		if json.Unmarshal(raw, &s) == nil && s.ID != "" {
			sr.schemas[strings.ToLower(s.ID)] = &s
		}
	}
	return nil
}

func addAttribute(paths map[string]bool, prefix string, a attributeDoc) {
	name := strings.ToLower(a.Name)
	if name == "" {
		return
	}
	paths[prefix+name] = strings.EqualFold(a.Type, "complex") && len(a.SubAttributes) == 0
	for _, s := range a.SubAttributes {
		if s.Name != "" {
			paths[prefix+name+"."+strings.ToLower(s.Name)] = false
		}
	}
}

// getRaw GETs path under the SCIM path as the call op and returns the body
// of the 2xx answer.
func (c *Client) getRaw(ctx context.Context, op, path string) ([]byte, error) {
	var body []byte
	_, err := c.call(ctx, op, true, func(cctx context.Context) error {
		res, err := c.exchange(callFrom(cctx), exchangeSpec{group: groupOthers, authorize: true, build: func(actx context.Context) (*http.Request, error) {
			r, err := http.NewRequestWithContext(actx, http.MethodGet, c.baseURL+c.scimPath+path, nil)
			if err == nil {
				r.Header.Set("Accept", "application/scim+json, application/json")
			}
			return r, err
		}})
		if err == nil {
			body = res.body
		}
		return err
	})
	return body, err
}

// ifMatch returns the If-Match to send for v: none when v is empty, or when
// the domain has shown it does not support ETags (a server without versions
// may refuse every If-Match with 412, which would never clear). The caller's
// precondition is then not checked, and the warning says so once.
func (c *Client) ifMatch(ctx context.Context, v string) *string {
	if v == "" {
		return nil
	}
	if caps, err := c.Capabilities(ctx); err == nil && caps.Discovered && !caps.ETag {
		c.logOnce(ctx, "no-etag", "identity domain does not support ETags; writes are sent without If-Match")
		return nil
	}
	return &v
}
