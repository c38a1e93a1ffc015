package identitydomain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// SCIM Bulk (RFC 7644 §3.7): many writes in one request, under a rate-limit
// group of their own (docs/oci-sources.md §4: 5 requests per second and 200 per minute on
// every tier, where "Others" allows 20 and 150 on the Free tier). The Go SDK
// has no Bulk operation; the client sends it itself.

// Schemas of Bulk messages.
const (
	SchemaBulkRequest  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	SchemaBulkResponse = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
)

// ErrBulkUnsupported is matched by the error of Bulk against a domain whose
// ServiceProviderConfig does not say bulk is supported: the caller sends the
// operations one by one instead.
var ErrBulkUnsupported = errors.New("identitydomain: the domain does not support Bulk")

// ErrNotRun is the Err of an operation the domain did not run: it came after
// failOnErrors was reached, or its request was refused as a whole.
var ErrNotRun = errors.New("identitydomain: operation not run")

// ErrNoResult is the Err of an operation the domain's answer held no result
// for (or none that could be told apart from another's), or whose request
// got no answer (a timeout, a 5xx, a broken connection): it may or may not
// have been applied, and is best tried again on its own, as what already
// exists or no longer does.
var ErrNoResult = errors.New("identitydomain: no result for the operation")

// BulkOperation is one operation of a Bulk request.
type BulkOperation struct {
	// Method is POST, PUT, PATCH or DELETE.
	Method string
	// Path is the resource type for POST ("/Users", "/Groups") or the
	// resource ("/Groups/<id>"); an id may be "bulkId:<bulkId>" of a POST
	// earlier in the same call.
	Path string
	// BulkID names a POST's new resource for later operations; required with
	// POST and unique in the call.
	BulkID string
	// Version, when set, is the operation's If-Match.
	Version string
	// Data is the operation's body (a create body, a PatchOp, ...); any
	// string in it that is "bulkId:<bulkId>" is replaced by that id.
	Data any
}

// BulkResult is what became of one operation.
type BulkResult struct {
	// Status is the operation's HTTP status (0 when it was not run).
	Status int
	// ID is the resource the operation created or changed, from its
	// location (or its path).
	ID string
	// Location and Version are the resource's, as the domain answered.
	Location string
	Version  string
	// Err is nil when the operation succeeded; an *Error when the domain
	// refused it (IsKind works on it); ErrNotRun when it was not run.
	Err error
}

// BulkOptions tune Bulk.
type BulkOptions struct {
	// FailOnErrors stops the call after that many failed operations (0:
	// never stop: every operation is tried).
	FailOnErrors int
}

type bulkWireOp struct {
	Method  string `json:"method"`
	BulkID  string `json:"bulkId,omitempty"`
	Version string `json:"version,omitempty"`
	Path    string `json:"path"`
	Data    any    `json:"data,omitempty"`
}

type bulkWireResult struct {
	Method   string          `json:"method"`
	BulkID   string          `json:"bulkId"`
	Version  string          `json:"version"`
	Location string          `json:"location"`
	Status   json.RawMessage `json:"status"`
	Response json.RawMessage `json:"response"`
}

// Bulk sends ops in order as Bulk requests no larger than the domain's
// advertised maxOperations and maxPayloadSize, and returns one result per
// operation, in order. References to bulkIds created by an earlier request
// of the same call are replaced by the ids before a request is sent. The
// error is non-nil only when the call could not go on (the domain does not
// support Bulk: ErrBulkUnsupported; a request failed as a whole: an *Error);
// the results then hold what the requests before it did, ErrNoResult for
// the operations of a request that got no answer (it may have run), and
// ErrNotRun for the rest. An operation larger than maxPayloadSize alone is not sent: its
// result is an InvalidRequest error. A request refused whole as too large (413: the domain takes
// less than it advertised) is sent again in halves, down to one operation,
// whose result is then that refusal; a request the domain throttled (429)
// is sent again after the wait it asks for, as any call is. A Bulk request
// is not repeated after a failure that may hide work done (its creates are
// not idempotent): each operation's own outcome is in its result, matched
// to it by position, bulkId or location (ErrNoResult where the answer
// named none).
func (c *Client) Bulk(ctx context.Context, ops []BulkOperation, opts BulkOptions) ([]BulkResult, error) {
	out := make([]BulkResult, len(ops))
	for i := range out {
		out[i].Err = ErrNotRun
	}
	if len(ops) == 0 {
		return out, nil
	}
	maxOps, maxBytes, err := c.bulkLimits(ctx)
	if err != nil {
		return out, err
	}
	if err := c.checkBulkOps(ops); err != nil {
		return out, err
	}
	resolved := map[string]string{} // bulkId -> id, from earlier requests
	failures := 0
	for start := 0; start < len(ops); {
		wire, end, err := c.bulkChunk(ops, start, maxOps, maxBytes, resolved)
		if errors.Is(err, errOversized) {
			// Too large for any request: refused alone, not sent; the
			// caller may send it without Bulk.
			out[start].Err = c.invalid("Bulk", fmt.Errorf("operation %d: %w", start, err))
			if failures++; opts.FailOnErrors > 0 && failures >= opts.FailOnErrors {
				break
			}
			start++
			continue
		}
		if err != nil {
			return out, err
		}
		left := 0 // this request's failOnErrors: what is left of the caller's (the loop ends before it reaches 0)
		if opts.FailOnErrors > 0 {
			left = opts.FailOnErrors - failures
		}
		results, err := c.sendBulk(ctx, wire, left)
		if tooLarge(err) {
			if len(wire) > 1 {
				maxOps = len(wire) / 2
				c.log.Debug("Bulk request refused as too large; sending it in halves", "domain", c.domain, "operations", len(wire))
				continue
			}
			out[start].Err = err // refused whole: not run, and would be refused again
			failures++
		} else if err != nil {
			unanswered(ctx, out[start:end], err)
			return out, err
		} else {
			stopped := left > 0 && len(results) < len(wire)
			failures += c.recordBulk(out[start:end], ops[start:end], wire, results, resolved, stopped)
			if stopped {
				break // the domain stopped (failOnErrors): the rest is not run
			}
		}
		if opts.FailOnErrors > 0 && failures >= opts.FailOnErrors {
			break
		}
		start = end
	}
	return out, nil
}

// checkBulkOps validates every operation before anything is sent.
func (c *Client) checkBulkOps(ops []BulkOperation) error {
	seen := map[string]bool{}
	for i, op := range ops {
		if err := checkBulkOp(op, seen); err != nil {
			return c.invalid("Bulk", fmt.Errorf("operation %d: %w", i, err))
		}
	}
	return nil
}

// unanswered sets the results of a request that failed with err: one that
// got no answer (a timeout, a 5xx, a broken connection, ctx ended) may
// have run, in part or whole, so its operations are ErrNoResult; one the
// domain refused as a whole stays ErrNotRun.
func unanswered(ctx context.Context, out []BulkResult, err error) {
	if !IsKind(err, KindUnavailable) && ctx.Err() == nil {
		return
	}
	for i := range out {
		out[i].Err = fmt.Errorf("%w: %w", ErrNoResult, err)
	}
}

// errOversized is the error of an operation larger than the domain takes
// in one request.
var errOversized = errors.New("operation too large for one Bulk request")

// tooLarge reports whether err is a whole Bulk request refused with 413.
func tooLarge(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusRequestEntityTooLarge
}

// bulkLimits returns the domain's maxOperations and maxPayloadSize for Bulk
// (50 and 1 MiB where it advertises none), or why Bulk cannot be used.
func (c *Client) bulkLimits(ctx context.Context) (maxOps, maxBytes int, err error) {
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("bulk in %s: %w", c.domain, err)
	}
	if !caps.Bulk.Supported {
		return 0, 0, fmt.Errorf("bulk in %s: %w", c.domain, ErrBulkUnsupported)
	}
	maxOps, maxBytes = caps.Bulk.MaxOperations, caps.Bulk.MaxPayloadSize
	if maxOps <= 0 {
		maxOps = 50
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	return maxOps, maxBytes, nil
}

// sendBulk sends one Bulk request of wire, with failOnErrors when it is
// positive, and returns its operations' results.
func (c *Client) sendBulk(ctx context.Context, wire []bulkWireOp, failOnErrors int) ([]bulkWireResult, error) {
	req := map[string]any{"schemas": []string{SchemaBulkRequest}, "Operations": wire}
	if failOnErrors > 0 {
		req["failOnErrors"] = failOnErrors
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, c.invalid("Bulk", err)
	}
	results, err := c.postBulk(ctx, body)
	if err != nil {
		return nil, fmt.Errorf("bulk of %d operations in %s: %w", len(wire), c.domain, err)
	}
	return results, nil
}

// recordBulk reads the results of one request into out (one per op sent),
// remembers the ids of the bulkIds it created, and returns how many
// operations failed. An operation the answer has no result for is
// ErrNotRun when the domain stopped at failOnErrors, else ErrNoResult.
func (c *Client) recordBulk(out []BulkResult, ops []BulkOperation, wire []bulkWireOp, results []bulkWireResult, resolved map[string]string, stopped bool) (failures int) {
	for i, r := range matchResults(wire, results) {
		if r == nil {
			if !stopped {
				out[i].Err = ErrNoResult
			}
			continue
		}
		res := c.bulkResult(*r, ops[i])
		out[i] = res
		if res.Err != nil {
			failures++
		} else if ops[i].BulkID != "" && res.ID != "" {
			resolved[ops[i].BulkID] = res.ID
		}
	}
	return failures
}

// matchResults pairs each operation sent with its result: by position
// where the answer lines up with the request (RFC 7644 §3.7.3 shows it
// so), else by bulkId for a POST and by method and resource for the
// others. An operation whose result cannot be told apart from another's
// (two operations on one resource, out of order) gets none.
func matchResults(wire []bulkWireOp, results []bulkWireResult) []*bulkWireResult {
	out := make([]*bulkWireResult, len(wire))
	aligned := len(results) == len(wire)
	for i := 0; aligned && i < len(wire); i++ {
		aligned = sameOp(wire[i], results[i])
	}
	if aligned {
		for i := range results {
			out[i] = &results[i]
		}
		return out
	}
	created := map[string]string{} // bulkId -> id, this request's
	byKey := map[string][]int{}    // bulkId or method and id -> results
	for j, r := range results {
		if r.BulkID != "" {
			byKey["bulkId "+r.BulkID] = append(byKey["bulkId "+r.BulkID], j)
			if id := lastSegment(r.Location); id != "" {
				created[r.BulkID] = id
			}
			continue
		}
		if id := lastSegment(r.Location); id != "" {
			k := strings.ToUpper(r.Method) + " " + id
			byKey[k] = append(byKey[k], j)
		}
	}
	keys := make([]string, len(wire))
	uses := map[string]int{}
	for i, w := range wire {
		if w.BulkID != "" {
			keys[i] = "bulkId " + w.BulkID
		} else {
			id := lastSegment(w.Path)
			if ref, ok := strings.CutPrefix(id, "bulkId:"); ok {
				id = created[ref]
			}
			keys[i] = w.Method + " " + id
		}
		uses[keys[i]]++
	}
	for i, k := range keys {
		if js := byKey[k]; len(js) == 1 && uses[k] == 1 {
			out[i] = &results[js[0]]
		}
	}
	return out
}

// sameOp reports whether result r may be the answer to w: same method,
// same bulkId, and, where it names a resource w names, the same one.
func sameOp(w bulkWireOp, r bulkWireResult) bool {
	if r.Method != "" && !strings.EqualFold(r.Method, w.Method) {
		return false
	}
	if r.BulkID != w.BulkID {
		return false
	}
	if w.Method == http.MethodPost || r.Location == "" {
		return true
	}
	id := lastSegment(w.Path)
	return strings.HasPrefix(id, "bulkId:") || lastSegment(r.Location) == id
}

// checkBulkOp validates one operation up front, so a mistake in it costs no
// request.
func checkBulkOp(op BulkOperation, seen map[string]bool) error {
	switch strings.ToUpper(op.Method) {
	case http.MethodPost:
		if op.BulkID == "" {
			return errors.New("POST needs a bulkId")
		}
	case http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return fmt.Errorf("method %q: want POST, PUT, PATCH or DELETE", op.Method)
	}
	if !strings.HasPrefix(op.Path, "/") {
		return fmt.Errorf("path %q must start with /", op.Path)
	}
	if op.BulkID != "" {
		if seen[op.BulkID] {
			return fmt.Errorf("bulkId %q used twice", op.BulkID)
		}
		seen[op.BulkID] = true
	}
	return nil
}

// bulkChunk builds the operations of the next request, from ops[start],
// fitting maxOps and maxBytes; it returns them and the index after the
// last one. An operation whose path names a bulkId created in the same
// request starts the next one instead: RFC 7644 §3.7.2 has servers resolve
// references in data, and not every server resolves them in a path
// (SCIMMY answers 404), so the client puts the id there itself.
func (c *Client) bulkChunk(ops []BulkOperation, start, maxOps, maxBytes int, resolved map[string]string) ([]bulkWireOp, int, error) {
	const envelope = 128 // the request's schemas and field names
	var wire []bulkWireOp
	size := envelope
	end := start
	inChunk := map[string]bool{} // bulkIds this request creates
	for end < len(ops) && len(wire) < maxOps {
		if ref := pathRef(ops[end].Path); ref != "" && inChunk[ref] {
			break // the next request names it by its id
		}
		if ops[end].BulkID != "" {
			inChunk[ops[end].BulkID] = true
		}
		w, err := wireOp(ops[end], resolved)
		if err != nil {
			return nil, 0, c.invalid("Bulk", fmt.Errorf("operation %d: %w", end, err))
		}
		b, err := json.Marshal(w)
		if err != nil {
			return nil, 0, c.invalid("Bulk", fmt.Errorf("operation %d: %w", end, err))
		}
		if size+len(b)+1 > maxBytes {
			if len(wire) == 0 {
				return nil, 0, fmt.Errorf("%w: %d bytes, more than the domain's maxPayloadSize %d", errOversized, len(b), maxBytes)
			}
			break
		}
		size += len(b) + 1
		wire = append(wire, w)
		end++
	}
	return wire, end, nil
}

// wireOp encodes op with the bulkIds of earlier requests resolved.
func wireOp(op BulkOperation, resolved map[string]string) (bulkWireOp, error) {
	w := bulkWireOp{Method: strings.ToUpper(op.Method), BulkID: op.BulkID, Version: op.Version, Path: resolvePath(op.Path, resolved)}
	if op.Data == nil {
		return w, nil
	}
	raw, err := json.Marshal(op.Data)
	if err != nil {
		return w, err
	}
	if !bytes.Contains(raw, []byte("null")) && (len(resolved) == 0 || !bytes.Contains(raw, []byte("bulkId:"))) {
		w.Data = json.RawMessage(raw)
		return w, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return w, err
	}
	w.Data = resolveData(dropNulls(v), resolved)
	return w, nil
}

// dropNulls removes the null members of v's objects. The SDK's structs
// (a User, a Group) encode every unset attribute as null with
// encoding/json (the SDK's own requests leave them out); a server may
// refuse a null where it wants a list (SCIMMY: "Attribute 'phoneNumbers'
// expected to be a collection"), or take it as "clear this".
func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = dropNulls(e)
		}
	case []any:
		for i := range x {
			x[i] = dropNulls(x[i])
		}
	}
	return v
}

// pathRef is the bulkId a path names ("/Groups/bulkId:g"), or "".
func pathRef(path string) string {
	for _, p := range strings.Split(path, "/") {
		if ref, ok := strings.CutPrefix(p, "bulkId:"); ok {
			return ref
		}
	}
	return ""
}

func resolvePath(path string, resolved map[string]string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if ref, ok := strings.CutPrefix(p, "bulkId:"); ok {
			if id, found := resolved[ref]; found {
				parts[i] = id
			}
		}
	}
	return strings.Join(parts, "/")
}

func resolveData(v any, resolved map[string]string) any {
	switch x := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(x, "bulkId:"); ok {
			if id, found := resolved[ref]; found {
				return id
			}
		}
	case []any:
		for i := range x {
			x[i] = resolveData(x[i], resolved)
		}
	case map[string]any:
		for k := range x {
			x[k] = resolveData(x[k], resolved)
		}
	}
	return v
}

// postBulk sends one Bulk request and returns its operations' results.
func (c *Client) postBulk(ctx context.Context, body []byte) ([]bulkWireResult, error) {
	var results []bulkWireResult
	_, err := c.callIn(ctx, "Bulk", false, groupBulk, func(cctx context.Context) error {
		res, err := c.exchange(callFrom(cctx), exchangeSpec{group: groupBulk, authorize: true, build: func(actx context.Context) (*http.Request, error) {
			r, err := http.NewRequestWithContext(actx, http.MethodPost, c.baseURL+c.scimPath+"/Bulk", bytes.NewReader(body))
			if err == nil {
				r.Header.Set("Content-Type", "application/scim+json")
				r.Header.Set("Accept", "application/scim+json, application/json")
			}
			return r, err
		}})
		if err != nil {
			return err
		}
		var resp struct {
			Operations []bulkWireResult `json:"Operations"`
		}
		if err := json.Unmarshal(res.body, &resp); err != nil {
			return &Error{Kind: KindUnavailable, Op: "Bulk", Domain: c.domain, Status: res.status, RequestID: res.requestID,
				Detail: "the BulkResponse could not be read", Err: err}
		}
		results = resp.Operations
		return nil
	})
	return results, err
}

// bulkResult reads one operation's result.
func (c *Client) bulkResult(r bulkWireResult, op BulkOperation) BulkResult {
	out := BulkResult{Location: r.Location, Version: r.Version}
	var s string
	if err := json.Unmarshal(r.Status, &s); err != nil {
		// RFC 7644 shows the status as a string; accept a number too.
		var n int
		if json.Unmarshal(r.Status, &n) == nil {
			s = strconv.Itoa(n)
		}
	}
	out.Status, _ = strconv.Atoi(strings.TrimSpace(strings.SplitN(s, " ", 2)[0]))
	if out.Status < 200 || out.Status >= 300 {
		e := errorFromResponse("Bulk", c.domain, out.Status, http.Header{}, r.Response)
		if out.Status == 0 {
			e = &Error{Kind: KindUnavailable, Op: "Bulk", Domain: c.domain, Detail: fmt.Sprintf("operation answered status %q", s)}
		}
		out.Err = e
		return out
	}
	out.ID = lastSegment(r.Location)
	if out.ID == "" && !strings.EqualFold(op.Method, http.MethodPost) {
		out.ID = lastSegment(op.Path)
	}
	return out
}

func lastSegment(s string) string {
	s = strings.TrimRight(s, "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// GroupWithSchemas returns g with its schemas completed as CreateGroup
// completes them, for a Bulk POST.
func GroupWithSchemas(g identitydomains.Group) identitydomains.Group {
	g.Schemas = withSchemas(g.Schemas, SchemaGroup)
	if g.UrnIetfParamsScimSchemasOracleIdcsExtensionGroupGroup != nil {
		g.Schemas = withSchemas(g.Schemas, SchemaGroupExtension)
	}
	return g
}

// WithMembers returns g holding the users as members, for a create that
// brings its members along.
func WithMembers(g identitydomains.Group, userIDs ...string) identitydomains.Group {
	g.Members = make([]identitydomains.GroupMembers, len(userIDs))
	for i, id := range userIDs {
		g.Members[i] = identitydomains.GroupMembers{Value: &id, Type: identitydomains.GroupMembersTypeUser}
	}
	return g
}

// AddMembersPatch is the PatchOp AddMembers sends, for a Bulk PATCH.
func AddMembersPatch(userIDs ...string) identitydomains.PatchOp {
	return patchOp([]identitydomains.Operations{Add("members", memberValues(userIDs))})
}

// RemoveMembersPatch is the PatchOp RemoveMembers sends first, for a Bulk
// PATCH. A domain refuses it whole (noTarget) when a user is not a member;
// RemoveMembers, alone, then removes just those that are.
func RemoveMembersPatch(userIDs ...string) identitydomains.PatchOp {
	return patchOp(removeOps(userIDs))
}

// PatchOf is the PatchOp PatchUser and PatchGroup send for ops, for a Bulk
// PATCH.
func PatchOf(ops ...identitydomains.Operations) identitydomains.PatchOp {
	return patchOp(ops)
}
