package identitydomain

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
)

// Bulk (RFC 7644 §3.7; docs/oci-sources.md §4): POST /admin/v1/Bulk with a BulkRequest.
// Identity Domains serve it with a rate-limit group of its own (5 requests
// per second and 200 per minute on every tier) and document 50 operations
// and 1 MB per request. The emulator runs the operations in order through
// the same handlers as single requests (so validation, events and the write
// log are the same), resolves "bulkId:<id>" references in paths and data to
// the ids of resources created earlier in the same request, stops after
// failOnErrors errors, and answers a BulkResponse with one result per
// operation run. A request beyond maxOperations or maxPayloadSize is refused
// whole with 413. The Bulk request counts once against the Bulk group; its
// operations are counted (CallCount) under their own operations but not
// against "Others".

// Schemas of Bulk messages.
const (
	SchemaBulkRequest  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	SchemaBulkResponse = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
)

// BulkConfig configures /admin/v1/Bulk.
type BulkConfig struct {
	// Disabled answers 501 to /Bulk and advertises bulk as unsupported, as a
	// server without Bulk would.
	Disabled bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// MaxOperations is the most operations one request may hold. Default 50
	// (docs/oci-sources.md §4).
	MaxOperations int `json:"maxOperations,omitempty" yaml:"maxOperations,omitempty"`
	// MaxPayloadSize is the largest request body in bytes. Default 1048576.
	MaxPayloadSize int `json:"maxPayloadSize,omitempty" yaml:"maxPayloadSize,omitempty"`
}

// Bulk defaults (docs/oci-sources.md §4).
const (
	DefaultBulkMaxOperations  = 50
	DefaultBulkMaxPayloadSize = 1 << 20
)

func (c BulkConfig) withDefaults() BulkConfig {
	if c.MaxOperations == 0 {
		c.MaxOperations = DefaultBulkMaxOperations
	}
	if c.MaxPayloadSize == 0 {
		c.MaxPayloadSize = DefaultBulkMaxPayloadSize
	}
	return c
}

func (c BulkConfig) validate() error {
	if c.MaxOperations < 0 || c.MaxPayloadSize < 0 {
		return errors.New("bulk: maxOperations and maxPayloadSize must not be negative")
	}
	return nil
}

// bulkSupport is the bulk section of the ServiceProviderConfig.
func (d *Domain) bulkSupport() map[string]any {
	c := d.cfg.Bulk.withDefaults()
	if c.Disabled {
		return map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0}
	}
	return map[string]any{"supported": true, "maxOperations": c.MaxOperations, "maxPayloadSize": c.MaxPayloadSize}
}

type bulkRequest struct {
	Schemas      []string        `json:"schemas"`
	FailOnErrors *int            `json:"failOnErrors"`
	Operations   []bulkOperation `json:"Operations"`
}

type bulkOperation struct {
	Method  string          `json:"method"`
	BulkID  string          `json:"bulkId,omitempty"`
	Version string          `json:"version,omitempty"`
	Path    string          `json:"path"`
	Data    json.RawMessage `json:"data,omitempty"`
}

type bulkResult struct {
	Method   string          `json:"method"`
	BulkID   string          `json:"bulkId,omitempty"`
	Version  string          `json:"version,omitempty"`
	Location string          `json:"location,omitempty"`
	Status   string          `json:"status"`
	Response json.RawMessage `json:"response,omitempty"`
}

// bulk serves POST /admin/v1/Bulk.
func (d *Domain) bulk(w http.ResponseWriter, r *request) error {
	cfg := d.cfg.Bulk.withDefaults()
	if cfg.Disabled {
		return errorf(http.StatusNotImplemented, "", "error.common.common.notImplemented", "Bulk is not supported by this domain.")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(cfg.MaxPayloadSize)+1))
	if err != nil {
		return errInvalidSyntax("Unreadable request body: %v", err)
	}
	if len(body) > cfg.MaxPayloadSize {
		return errorf(http.StatusRequestEntityTooLarge, "", "error.common.common.payloadTooLarge",
			"The size of the bulk operation exceeds the maxPayloadSize (%d).", cfg.MaxPayloadSize)
	}
	var req bulkRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return errInvalidSyntax("The request body is not valid JSON: %v", err)
	}
	if !containsFold(req.Schemas, SchemaBulkRequest) {
		return errInvalidSyntax("schemas must hold %s.", SchemaBulkRequest)
	}
	if len(req.Operations) == 0 {
		return errInvalidSyntax("Operations is required.")
	}
	if len(req.Operations) > cfg.MaxOperations {
		return errorf(http.StatusRequestEntityTooLarge, "", "error.common.common.payloadTooLarge",
			"The number of operations exceeds the maxOperations (%d).", cfg.MaxOperations)
	}
	if req.FailOnErrors != nil && *req.FailOnErrors < 0 {
		return errInvalidValue("failOnErrors must not be negative.")
	}
	seen := map[string]bool{}
	for i, op := range req.Operations {
		if op.BulkID != "" && seen[op.BulkID] {
			return errInvalidValue("Operations[%d]: bulkId %q is used twice.", i, op.BulkID)
		}
		seen[op.BulkID] = true
	}
	resolved := map[string]string{} // bulkId -> id of the resource its POST created
	results := make([]bulkResult, 0, len(req.Operations))
	failures := 0
	for _, op := range req.Operations {
		if req.FailOnErrors != nil && *req.FailOnErrors > 0 && failures >= *req.FailOnErrors {
			break
		}
		res := d.bulkOne(r, op, resolved)
		if code, _ := strconv.Atoi(res.Status); code >= 300 {
			failures++
		}
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"schemas": []string{SchemaBulkResponse}, "Operations": results})
	return nil
}

// bulkOne runs one operation through the domain's own handlers.
func (d *Domain) bulkOne(r *request, op bulkOperation, resolved map[string]string) bulkResult {
	res := bulkResult{Method: strings.ToUpper(op.Method), BulkID: op.BulkID}
	fail := func(err error) bulkResult {
		rec := httptest.NewRecorder()
		writeError(rec, err)
		res.Status, res.Response = strconv.Itoa(rec.Code), rec.Body.Bytes()
		return res
	}
	path, data, err := checkBulkOperation(op, res.Method, resolved)
	if err != nil {
		return fail(err)
	}
	inner, err := bulkInnerRequest(r, res.Method, path, data, op.Version)
	if err != nil {
		return fail(errInvalidValue("path %q: %v", op.Path, err))
	}
	rt, rerr := d.route(inner)
	if rerr != nil {
		return fail(rerr)
	}
	if rt.op == OpBulk || !(strings.HasPrefix(path, "/Users") || strings.HasPrefix(path, "/Groups")) {
		return fail(errInvalidValue("path %q: Bulk takes /Users and /Groups.", op.Path))
	}
	d.stats.bulkOperation(rt.op)
	rec := httptest.NewRecorder()
	ireq := &request{Request: inner, op: rt.op, id: rt.id, client: r.client, base: r.base, ecid: r.ecid}
	if err := rt.handler(rec, ireq); err != nil {
		writeError(rec, err)
	}
	res.Status = strconv.Itoa(rec.Code)
	res.Version = rec.Header().Get("ETag")
	if rec.Code >= 300 {
		// A failed operation on a resource names it (RFC 7644 §3.7.3's
		// example of a failed PUT), so a client can tell its result apart
		// from the others'; a failed POST has only its bulkId.
		if rt.id != "" {
			res.Location = r.base + "/admin/v1" + path
		}
		res.Response = rec.Body.Bytes()
		return res
	}
	res.describe(rec.Body.Bytes(), op.BulkID, resolved)
	if res.Location == "" && rt.id != "" {
		res.Location = r.base + "/admin/v1" + path
	}
	return res
}

// checkBulkOperation validates an operation's method, bulkId and path and
// returns its path and data with the bulkId references of earlier
// operations resolved.
func checkBulkOperation(op bulkOperation, method string, resolved map[string]string) (string, []byte, error) {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return "", nil, errInvalidValue("method %q: want POST, PUT, PATCH or DELETE.", op.Method)
	}
	if method == http.MethodPost && op.BulkID == "" {
		return "", nil, errInvalidValue("bulkId is required with POST.")
	}
	path, err := resolveBulkPath(op.Path, resolved)
	if err != nil {
		return "", nil, err
	}
	if len(op.Data) == 0 {
		return path, nil, nil
	}
	var v any
	if err := json.Unmarshal(op.Data, &v); err != nil {
		return "", nil, errInvalidSyntax("data is not valid JSON: %v", err)
	}
	if v, err = resolveBulkData(v, resolved); err != nil {
		return "", nil, err
	}
	data, _ := json.Marshal(v)
	return path, data, nil
}

// bulkInnerRequest is the single request one operation of the Bulk request
// r stands for, with r's credentials.
func bulkInnerRequest(r *request, method, path string, data []byte, version string) (*http.Request, error) {
	inner, err := http.NewRequestWithContext(r.Context(), method, "/admin/v1"+path, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	inner.Host = r.Host
	inner.RemoteAddr = r.RemoteAddr
	inner.Header.Set("Content-Type", "application/scim+json")
	inner.Header.Set("Authorization", r.Header.Get("Authorization"))
	if version != "" {
		inner.Header.Set("If-Match", version)
	}
	return inner, nil
}

// describe fills a successful result's location and version from the
// resource the operation answered, and records the id a POST's bulkId now
// stands for.
func (res *bulkResult) describe(body []byte, bulkID string, resolved map[string]string) {
	var doc struct {
		ID   string `json:"id"`
		Meta struct {
			Location string `json:"location"`
			Version  string `json:"version"`
		} `json:"meta"`
	}
	if len(body) == 0 || json.Unmarshal(body, &doc) != nil {
		return
	}
	res.Location = doc.Meta.Location
	if doc.Meta.Version != "" {
		res.Version = doc.Meta.Version
	}
	if res.Method == http.MethodPost && doc.ID != "" {
		resolved[bulkID] = doc.ID
	}
}

// resolveBulkPath replaces a "bulkId:<id>" path segment by the id it stands for.
func resolveBulkPath(path string, resolved map[string]string) (string, error) {
	if !strings.HasPrefix(path, "/") {
		return "", errInvalidValue("path %q must start with /.", path)
	}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if ref, ok := strings.CutPrefix(p, "bulkId:"); ok {
			id, found := resolved[ref]
			if !found {
				return "", errUnresolved(ref)
			}
			parts[i] = id
		}
	}
	return strings.Join(parts, "/"), nil
}

// resolveBulkData replaces every string "bulkId:<id>" in v (a member's
// value, say) by the id it stands for.
func resolveBulkData(v any, resolved map[string]string) (any, error) {
	switch x := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(x, "bulkId:"); ok {
			id, found := resolved[ref]
			if !found {
				return nil, errUnresolved(ref)
			}
			return id, nil
		}
		return x, nil
	case []any:
		for i := range x {
			r, err := resolveBulkData(x[i], resolved)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
		return x, nil
	case map[string]any:
		for k, e := range x {
			r, err := resolveBulkData(e, resolved)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
		return x, nil
	}
	return v, nil
}

// errUnresolved is the answer to a reference to a bulkId no earlier
// operation of the request created (RFC 7644 §3.7.2: 409).
func errUnresolved(ref string) *scimError {
	return errorf(http.StatusConflict, "invalidValue", "error.common.validation.invalidValue",
		"bulkId:%s does not name a resource created earlier in this request.", ref)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
