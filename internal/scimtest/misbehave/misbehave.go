// Package misbehave is a SCIM server that misbehaves the ways servers do in
// the field, for tests: an http.Handler wrapping a well-behaved one (the
// identity domain emulator's Handler) and breaking its answers, one switch
// per fault. Clients are tested against it to show that each fault costs
// completeness or a feature, never safety: a listing that cannot be read
// whole fails instead of coming back short, an attribute refused by the
// server does not stop the others, a dangling member is seen.
//
//	d, _ := emu.New(cfg)
//	srv := misbehave.New(d.Handler(), misbehave.Faults{IgnorePaging: true})
//	ts := httptest.NewServer(srv)
//
// Faults can be changed while serving (SetFaults). Requests outside the SCIM
// path (the token endpoint, the emulator's /_emulator/ controls) pass
// untouched. Nothing here is used by production code.
package misbehave

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults are the faults seen in the field, one switch each. The zero value
// passes everything through.
type Faults struct {
	// IgnorePaging: lists (GET and POST /.search) answer from the first
	// resource whatever startIndex asks, and say startIndex 1.
	IgnorePaging bool
	// IgnoreQueryPaging: GET lists ignore startIndex and count in the query
	// and answer the first PageSize resources (as scimmy-routers does under
	// Express 5, whose req.query is re-parsed on every read); POST /.search
	// pages correctly.
	IgnoreQueryPaging bool
	// PageSize is the page a server ignoring the query's count answers.
	// Default 20.
	PageSize int
	// MaxPageSize, when positive, caps every list page (GET and POST
	// /.search) at that many resources, whatever count asks (many servers
	// page at 100 or 200); alone it is no fault, only smaller pages.
	MaxPageSize int
	// RepeatPage: every list page answers the first page's resources while
	// claiming the startIndex asked for.
	RepeatPage bool
	// OmitTotalResults: list answers carry no totalResults.
	OmitTotalResults bool
	// DropExtensions are schema URNs the server does not keep: dropped
	// silently from creates and replaces and from every answer, absent from
	// discovery, and a PATCH whose path is in one answers 400 invalidPath.
	DropExtensions []string
	// RejectAttribute is an attribute path ("title", "name.givenName", or a
	// full extension path) the server declares but refuses: a create,
	// replace or PATCH that sets it answers 400 invalidPath.
	RejectAttribute string
	// NoDeleteCascade: deleting a user leaves it in its groups' members;
	// removing the dangling member is accepted.
	NoDeleteCascade bool
	// MembersOnlyOnRequest: a group's members come back only when
	// attributes names plain members; members[startIndex=..&count=..] (member
	// paging) is taken as an unknown attribute and answers none.
	MembersOnlyOnRequest bool
	// NoETag: discovery says etag is not supported, answers carry no ETag
	// header and no meta.version, and any If-Match answers 412.
	NoETag bool
	// NoFilter: discovery says filter is not supported and the filter
	// parameter is ignored (every resource matches).
	NoFilter bool
	// NoSort: discovery says sort is not supported and sortBy is ignored.
	NoSort bool
	// NoDiscovery: /ServiceProviderConfig, /ResourceTypes and /Schemas
	// answer 404.
	NoDiscovery bool
	// FailUsersFrom, when positive, makes every listing of users (GET and
	// POST /.search) that asks for a startIndex from it on answer 503: a
	// server that fails in the middle of a long listing.
	FailUsersFrom int
	// TooManyRequests is how many of the next requests answer 429 with
	// Retry-After: RetryAfter (rounded up to seconds); counted down.
	TooManyRequests int
	// RetryAfter is the Retry-After of those 429s. Default 1s.
	RetryAfter time.Duration

	// Bulk faults (bulk.go).
	BulkFaults
}

// Server is the misbehaving handler.
type Server struct {
	next http.Handler
	base string

	mu     sync.Mutex
	f      Faults
	ghosts map[string]map[string]string // group id -> user id -> display
	counts map[string]int
}

// New wraps next, whose SCIM API is under /admin/v1 (the emulator's).
func New(next http.Handler, f Faults) *Server {
	return NewAt(next, "/admin/v1", f)
}

// NewAt wraps next, whose SCIM API is under base (e.g. /scim/v2).
func NewAt(next http.Handler, base string, f Faults) *Server {
	return &Server{next: next, base: strings.TrimRight(base, "/"), f: f,
		ghosts: map[string]map[string]string{}, counts: map[string]int{}}
}

// SetFaults replaces the active faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
}

// Faults returns the active faults (TooManyRequests as counted down).
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

// Count returns how often a fault acted: "429", "paging", "dropped",
// "rejected", "ghost", "412", "filter", "sort".
func (s *Server) Count(what string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[what]
}

// Ghosts returns the dangling members of a group (users deleted while
// members, with NoDeleteCascade).
func (s *Server) Ghosts(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.ghosts[groupID] {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (s *Server) count(what string) {
	s.mu.Lock()
	s.counts[what]++
	s.mu.Unlock()
}

// target is what a request addresses under the SCIM path.
type target struct {
	kind   string // Users, Groups, ServiceProviderConfig, ResourceTypes, Schemas
	id     string
	search bool
}

func (s *Server) classify(p string) (target, bool) {
	rest, ok := strings.CutPrefix(p, s.base+"/")
	if !ok {
		return target{}, false
	}
	kind, id, _ := strings.Cut(strings.TrimSuffix(rest, "/"), "/")
	t := target{kind: kind, id: id}
	if id == ".search" {
		t.id, t.search = "", true
	}
	return t, true
}

// ServeHTTP implements http.Handler: the faults of a request to Users or
// Groups bend what goes to the server and what comes back; discovery has
// its own; anything else passes through.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, ok := s.classify(r.URL.Path)
	if !ok {
		s.next.ServeHTTP(w, r)
		return
	}
	f, throttled := s.take()
	if throttled {
		s.tooManyRequests(w, f)
		return
	}
	switch t.kind {
	case "ServiceProviderConfig", "ResourceTypes", "Schemas":
		s.discovery(w, r, t, f)
	case "Users", "Groups":
		s.resource(w, r, t, f)
	case "Bulk":
		s.bulk(w, r, f)
	default:
		s.next.ServeHTTP(w, r)
	}
}

// resource bends a request to Users or Groups, forwards it and bends the
// answer.
func (s *Server) resource(w http.ResponseWriter, r *http.Request, t target, f Faults) {
	if f.NoETag && r.Header.Get("If-Match") != "" {
		s.count("412")
		scimError(w, http.StatusPreconditionFailed, "", "Precondition failed: this server keeps no versions.")
		return
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		_ = r.Body.Close()
	}
	q := r.URL.Query()
	list := r.Method == http.MethodGet && t.id == ""

	// The request.
	body, askedStart, done := s.bendRequest(w, r, t, f, q, body, list)
	if done {
		return
	}
	if (list || t.search) && t.kind == "Users" && f.FailUsersFrom > 0 && askedStart >= f.FailUsersFrom {
		s.count("list503")
		scimError(w, http.StatusServiceUnavailable, "", "Service unavailable.")
		return
	}
	if t.kind == "Groups" && f.MembersOnlyOnRequest && q.Has("attributes") {
		s.dropPagedMembers(q)
	}

	// Forward.
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r2)

	// The answer.
	out := rec.Body.Bytes()
	if rec.Code >= 200 && rec.Code < 300 && len(out) > 0 {
		out = s.answer(out, t, f, r, list, askedStart)
	}
	for k, v := range rec.Header() {
		if f.NoETag && strings.EqualFold(k, "ETag") {
			continue
		}
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

// bendRequest applies the faults to a request's query q (in place) and
// body; it returns the body to forward, the startIndex a listing asked for,
// and done when it has answered the request itself.
func (s *Server) bendRequest(w http.ResponseWriter, r *http.Request, t target, f Faults, q url.Values, body []byte, list bool) (out []byte, askedStart int, done bool) {
	switch {
	case list:
		askedStart = s.listQuery(q, f)
	case t.search:
		body, askedStart = s.searchBody(body, f)
	case r.Method == http.MethodPost || r.Method == http.MethodPut:
		body, done = s.writeBody(w, body, f)
	case r.Method == http.MethodPatch:
		body, done = s.patchRequest(w, r, t, f, body)
	case r.Method == http.MethodDelete && t.kind == "Users" && f.NoDeleteCascade:
		s.rememberGhost(r, t.id)
	}
	return body, askedStart, done
}

// take returns the faults for one request and whether it is refused with
// 429, counting the refusal down.
func (s *Server) take() (Faults, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.f
	if s.f.TooManyRequests > 0 {
		s.f.TooManyRequests--
	}
	return f, f.TooManyRequests > 0
}

// tooManyRequests answers 429 with Retry-After in whole seconds.
func (s *Server) tooManyRequests(w http.ResponseWriter, f Faults) {
	s.count("429")
	ra := f.RetryAfter
	if ra <= 0 {
		ra = time.Second
	}
	w.Header().Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
	scimError(w, http.StatusTooManyRequests, "", "Too many requests.")
}

// listQuery bends a listing's query (paging, page size, filter, sort) and
// returns the startIndex it asked for.
func (s *Server) listQuery(q url.Values, f Faults) int {
	askedStart := atoiOr(q.Get("startIndex"), 1)
	if f.IgnoreQueryPaging {
		q.Del("startIndex")
		q.Set("count", strconv.Itoa(pageSize(f)))
		s.count("paging")
	}
	if f.IgnorePaging || f.RepeatPage {
		q.Del("startIndex")
		s.count("paging")
	}
	if c := atoiOr(q.Get("count"), 0); f.MaxPageSize > 0 && (c == 0 || c > f.MaxPageSize) {
		q.Set("count", strconv.Itoa(f.MaxPageSize))
	}
	if f.NoFilter && q.Has("filter") {
		q.Del("filter")
		s.count("filter")
	}
	if f.NoSort && q.Has("sortBy") {
		q.Del("sortBy")
		q.Del("sortOrder")
		s.count("sort")
	}
	return askedStart
}

// searchBody bends a .search request's body as listQuery bends a query,
// and returns it with the startIndex it asked for (0 when the body is not
// JSON).
func (s *Server) searchBody(body []byte, f Faults) ([]byte, int) {
	var sr map[string]any
	if json.Unmarshal(body, &sr) != nil {
		return body, 0
	}
	askedStart := 1
	if v, ok := sr["startIndex"].(float64); ok {
		askedStart = int(v)
	}
	if f.IgnorePaging || f.RepeatPage {
		delete(sr, "startIndex")
		s.count("paging")
	}
	if c, _ := sr["count"].(float64); f.MaxPageSize > 0 && (c == 0 || int(c) > f.MaxPageSize) {
		sr["count"] = f.MaxPageSize
	}
	if f.NoFilter {
		delete(sr, "filter")
	}
	if f.NoSort {
		delete(sr, "sortBy")
		delete(sr, "sortOrder")
	}
	body, _ = json.Marshal(sr)
	return body, askedStart
}

// writeBody refuses a POST or PUT that sets the rejected attribute (done:
// answered) or drops the extensions the faults drop.
func (s *Server) writeBody(w http.ResponseWriter, body []byte, f Faults) ([]byte, bool) {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return body, false
	}
	if f.RejectAttribute != "" && docHas(doc, f.RejectAttribute) {
		s.rejectAttribute(w, f)
		return body, true
	}
	if dropFrom(doc, f.DropExtensions) {
		s.count("dropped")
	}
	body, _ = json.Marshal(doc)
	return body, false
}

// rejectAttribute answers 400 invalidPath for a request that sets
// f.RejectAttribute, as a server that does not support it.
func (s *Server) rejectAttribute(w http.ResponseWriter, f Faults) {
	s.count("rejected")
	scimError(w, http.StatusBadRequest, "invalidPath", "Attribute "+f.RejectAttribute+" is not supported.")
}

// dropPagedMembers removes members[...] from the attributes asked for, as
// a server that answers members only when asked for them plainly.
func (s *Server) dropPagedMembers(q url.Values) {
	var keep []string
	for _, a := range strings.Split(q.Get("attributes"), ",") {
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(a)), "members[") {
			keep = append(keep, a)
		} else {
			s.count("members")
		}
	}
	if len(keep) == 0 {
		keep = []string{"id"}
	}
	q.Set("attributes", strings.Join(keep, ","))
}

// answer bends a successful answer: a list's startIndex and totalResults,
// and each resource in it (or the one resource) by answerResource.
func (s *Server) answer(out []byte, t target, f Faults, r *http.Request, list bool, askedStart int) []byte {
	var doc map[string]any
	if json.Unmarshal(out, &doc) != nil {
		return out
	}
	if res, ok := doc["Resources"].([]any); ok {
		if (list || t.search) && f.IgnorePaging || list && f.IgnoreQueryPaging {
			doc["startIndex"] = 1
		}
		if (list || t.search) && f.RepeatPage {
			doc["startIndex"] = askedStart
		}
		if f.OmitTotalResults {
			delete(doc, "totalResults")
		}
		for _, x := range res {
			if m, ok := x.(map[string]any); ok {
				s.answerResource(m, t, f, r)
			}
		}
	} else if t.kind == "Users" || t.kind == "Groups" {
		s.answerResource(doc, t, f, r)
	}
	out, _ = json.Marshal(doc)
	return out
}

// answerResource breaks one resource of an answer.
func (s *Server) answerResource(m map[string]any, t target, f Faults, r *http.Request) {
	if dropFrom(m, f.DropExtensions) {
		s.count("dropped")
	}
	if f.NoETag {
		if meta, ok := m["meta"].(map[string]any); ok {
			delete(meta, "version")
		}
	}
	if t.kind != "Groups" || !asksMembers(r) {
		return
	}
	id, _ := m["id"].(string)
	s.mu.Lock()
	ghosts := s.ghosts[id]
	var extra []any
	for uid, display := range ghosts {
		extra = append(extra, map[string]any{"value": uid, "type": "User", "display": display})
	}
	s.mu.Unlock()
	if len(extra) > 0 {
		ms, _ := m["members"].([]any)
		m["members"] = append(ms, extra...)
		s.count("ghost")
	}
}

var firstMemberPage = regexp.MustCompile(`(?i)members\[startindex=1[&\]]`)

// asksMembers reports whether the request asks for members, and for the
// first members page when paging them.
func asksMembers(r *http.Request) bool {
	a := strings.ToLower(r.URL.Query().Get("attributes"))
	if !strings.Contains(a, "members") {
		return false
	}
	return !strings.Contains(a, "members[") || firstMemberPage.MatchString(a)
}

// patchRequest applies the faults to a PATCH; done means it answered.
func (s *Server) patchRequest(w http.ResponseWriter, r *http.Request, t target, f Faults, body []byte) ([]byte, bool) {
	var p struct {
		Schemas    []string         `json:"schemas"`
		Operations []map[string]any `json:"Operations"`
	}
	if json.Unmarshal(body, &p) != nil {
		return body, false
	}
	var keep []map[string]any
	removedGhost := false
	for _, op := range p.Operations {
		path, _ := op["path"].(string)
		lpath := strings.ToLower(path)
		for _, urn := range f.DropExtensions {
			if strings.HasPrefix(lpath, strings.ToLower(urn)) {
				s.count("rejected")
				scimError(w, http.StatusBadRequest, "invalidPath", "No such attribute: "+path+".")
				return nil, true
			}
		}
		if f.RejectAttribute != "" && pathIs(path, f.RejectAttribute) {
			s.rejectAttribute(w, f)
			return nil, true
		}
		if v, ok := op["value"].(map[string]any); ok {
			if f.RejectAttribute != "" && docHas(v, f.RejectAttribute) {
				s.rejectAttribute(w, f)
				return nil, true
			}
			if dropFrom(v, f.DropExtensions) {
				s.count("dropped")
			}
		}
		if t.kind == "Groups" && strings.EqualFold(fmtOp(op), "remove") && s.removeGhost(t.id, path, op["value"]) {
			removedGhost = true
			continue
		}
		keep = append(keep, op)
	}
	if removedGhost && len(keep) == 0 {
		// Only dangling members were removed: answer with the group.
		r2 := r.Clone(r.Context())
		r2.Method, r2.Body, r2.ContentLength = http.MethodGet, http.NoBody, 0
		r2.URL.RawQuery = ""
		r2.Header.Del("If-Match")
		s.next.ServeHTTP(w, r2)
		return nil, true
	}
	p.Operations = keep
	out, _ := json.Marshal(p)
	return out, false
}

func fmtOp(op map[string]any) string {
	s, _ := op["op"].(string)
	return s
}

var memberFilter = regexp.MustCompile(`(?i)^members\[\s*value\s+eq\s+"([^"]*)"\s*\]$`)

// removeGhost removes a dangling member named by a remove operation.
func (s *Server) removeGhost(groupID, path string, value any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.ghosts[groupID]
	if len(g) == 0 {
		return false
	}
	if m := memberFilter.FindStringSubmatch(strings.TrimSpace(path)); m != nil {
		if _, ok := g[m[1]]; ok {
			delete(g, m[1])
			return true
		}
		return false
	}
	if strings.EqualFold(path, "members") {
		vs, _ := value.([]any)
		hit := false
		for _, v := range vs {
			if mv, ok := v.(map[string]any); ok {
				if id, _ := mv["value"].(string); id != "" {
					if _, ok := g[id]; ok {
						delete(g, id)
						hit = true
					}
				}
			}
		}
		return hit && len(vs) == 1
	}
	return false
}

// rememberGhost records the groups of a user about to be deleted.
func (s *Server) rememberGhost(r *http.Request, userID string) {
	r2 := r.Clone(r.Context())
	r2.Method, r2.Body, r2.ContentLength = http.MethodGet, http.NoBody, 0
	r2.URL.RawQuery = url.Values{"attributes": {"groups,displayName,userName"}}.Encode()
	r2.Header.Del("If-Match")
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r2)
	if rec.Code != http.StatusOK {
		return
	}
	var u struct {
		UserName    string `json:"userName"`
		DisplayName string `json:"displayName"`
		Groups      []struct {
			Value string `json:"value"`
		} `json:"groups"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &u) != nil {
		return
	}
	display := u.DisplayName
	if display == "" {
		display = u.UserName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range u.Groups {
		if s.ghosts[g.Value] == nil {
			s.ghosts[g.Value] = map[string]string{}
		}
		s.ghosts[g.Value][userID] = display
	}
}

// discovery answers the discovery endpoints with the faults applied.
func (s *Server) discovery(w http.ResponseWriter, r *http.Request, t target, f Faults) {
	if f.NoDiscovery {
		scimError(w, http.StatusNotFound, "", "No resource found at "+r.URL.Path+".")
		return
	}
	if t.kind == "Schemas" && t.id != "" && dropped(t.id, f.DropExtensions) {
		scimError(w, http.StatusNotFound, "", "Schema "+t.id+" not found.")
		return
	}
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r)
	out := rec.Body.Bytes()
	var doc map[string]any
	if rec.Code == http.StatusOK && json.Unmarshal(out, &doc) == nil {
		if res, ok := doc["Resources"].([]any); ok {
			var keep []any
			for _, x := range res {
				if m, ok := x.(map[string]any); !ok || fixDiscovered(t.kind, m, f) {
					keep = append(keep, x)
				}
			}
			doc["Resources"] = keep
			doc["totalResults"], doc["itemsPerPage"] = len(keep), len(keep)
		} else {
			fixDiscovered(t.kind, doc, f)
		}
		out, _ = json.Marshal(doc)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

// fixDiscovered applies the faults to one discovery document of kind
// (ServiceProviderConfig, ResourceTypes or Schemas) in place; false means
// the document is to be left out (a dropped extension's schema).
func fixDiscovered(kind string, m map[string]any, f Faults) bool {
	switch kind {
	case "ServiceProviderConfig":
		for key, off := range map[string]bool{"etag": f.NoETag, "filter": f.NoFilter, "sort": f.NoSort} {
			if sec, ok := m[key].(map[string]any); ok && off {
				sec["supported"] = false
			}
		}
	case "ResourceTypes":
		if exts, ok := m["schemaExtensions"].([]any); ok {
			var keep []any
			for _, e := range exts {
				if em, ok := e.(map[string]any); ok {
					if urn, _ := em["schema"].(string); dropped(urn, f.DropExtensions) {
						continue
					}
				}
				keep = append(keep, e)
			}
			m["schemaExtensions"] = keep
		}
	case "Schemas":
		id, _ := m["id"].(string)
		return !dropped(id, f.DropExtensions)
	}
	return true
}

func dropped(urn string, drop []string) bool {
	return slices.ContainsFunc(drop, func(d string) bool { return strings.EqualFold(d, urn) })
}

// dropFrom removes the dropped extensions from a resource document.
func dropFrom(doc map[string]any, drop []string) bool {
	hit := false
	for k := range doc {
		if dropped(k, drop) {
			delete(doc, k)
			hit = true
		}
	}
	if schemas, ok := doc["schemas"].([]any); ok && hit {
		var keep []any
		for _, sc := range schemas {
			if str, _ := sc.(string); !dropped(str, drop) {
				keep = append(keep, sc)
			}
		}
		doc["schemas"] = keep
	}
	return hit
}

// docHas reports whether a resource document (or a PATCH value) sets the
// attribute path.
func docHas(doc map[string]any, path string) bool {
	lp := strings.ToLower(path)
	for k, v := range doc {
		lk := strings.ToLower(k)
		if lk == lp {
			return true
		}
		if strings.HasPrefix(lk, "urn:") {
			if rest, ok := strings.CutPrefix(lp, lk+":"); ok {
				if sub, ok := v.(map[string]any); ok {
					return docHas(sub, rest)
				}
			}
			continue
		}
		if rest, ok := strings.CutPrefix(lp, lk+"."); ok {
			if sub, ok := v.(map[string]any); ok && docHas(sub, rest) {
				return true
			}
		}
	}
	return false
}

// pathIs reports whether a PATCH path addresses the attribute (value
// filters ignored).
func pathIs(path, attr string) bool {
	p := strings.ToLower(path)
	if i := strings.IndexByte(p, '['); i >= 0 {
		if j := strings.IndexByte(p[i:], ']'); j >= 0 {
			p = p[:i] + p[i+j+1:]
		}
	}
	a := strings.ToLower(attr)
	return p == a || strings.HasPrefix(p, a+".")
}

func pageSize(f Faults) int {
	if f.PageSize > 0 {
		return f.PageSize
	}
	return 20
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		return n
	}
	return def
}

// scimError answers a SCIM error (RFC 7644 §3.12).
func scimError(w http.ResponseWriter, status int, scimType, detail string) {
	b := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"}, "status": strconv.Itoa(status), "detail": detail}
	if scimType != "" {
		b["scimType"] = scimType
	}
	out, _ := json.Marshal(b)
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}
