package identitydomain

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/iamflow/iamflow/emulator/internal/pause"
)

// Operation names an API operation as the oci-go-sdk names it; CallCount
// counts requests by Operation.
type Operation string

// The operations the emulator serves.
const (
	OpToken                      Operation = "Token"
	OpCreateUser                 Operation = "CreateUser"
	OpGetUser                    Operation = "GetUser"
	OpListUsers                  Operation = "ListUsers"
	OpSearchUsers                Operation = "SearchUsers"
	OpPatchUser                  Operation = "PatchUser"
	OpPutUser                    Operation = "PutUser"
	OpDeleteUser                 Operation = "DeleteUser"
	OpCreateGroup                Operation = "CreateGroup"
	OpGetGroup                   Operation = "GetGroup"
	OpListGroups                 Operation = "ListGroups"
	OpSearchGroups               Operation = "SearchGroups"
	OpPatchGroup                 Operation = "PatchGroup"
	OpPutGroup                   Operation = "PutGroup"
	OpDeleteGroup                Operation = "DeleteGroup"
	OpPutUserCapabilitiesChanger Operation = "PutUserCapabilitiesChanger"
	OpGetServiceProviderConfig   Operation = "GetServiceProviderConfig"
	OpListResourceTypes          Operation = "ListResourceTypes"
	OpGetResourceType            Operation = "GetResourceType"
	OpListSchemas                Operation = "ListSchemas"
	OpGetSchema                  Operation = "GetSchema"
	OpBulk                       Operation = "Bulk"
)

// maxBody bounds request bodies (IDCS documents 1 MB for Bulk only; the
// emulator allows 10 MB elsewhere and answers 413 above it).
const maxBody = 10 << 20

// request is what a handler needs to know about the call beyond the HTTP request.
type request struct {
	*http.Request
	op     Operation
	id     string // resource id from the path, if any
	client *Client
	base   string // scheme://host the client used, for meta.location and $ref
	ecid   string
}

type handlerFunc func(w http.ResponseWriter, r *request) error

type route struct {
	op      Operation
	handler handlerFunc
	id      string
}

// serveHTTP is the domain's whole HTTP surface.
func (d *Domain) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ecid := d.ids.hex32()
	w.Header().Set("X-ORACLE-DMS-ECID", ecid)
	w.Header().Set("X-ORACLE-DMS-RID", "0")
	if strings.HasPrefix(r.URL.Path, "/_emulator/") {
		d.serveControl(w, r)
		return
	}
	rt, err := d.route(r)
	if err == nil {
		d.stats.count(rt.op)
	}
	if d.faults.get().Outage { // answers everything, routable or not
		d.stats.fault()
		writeError(w, errorf(http.StatusServiceUnavailable, "", "error.common.common.serviceUnavailable", "Service unavailable."))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if !d.applyFaults(w, r, rt.op) {
		return
	}
	req := &request{Request: r, op: rt.op, id: rt.id, base: baseURL(r), ecid: ecid}
	switch rt.op {
	case OpToken:
		d.serveToken(w, req)
		return
	case OpDiscovery, OpSigningCertJWK, OpAuthorize:
		d.serveOIDC(w, req)
		return
	}
	client, err := d.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	req.client = client
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	lw := d.faults.maybeLoseResponse(w, r)
	if err := rt.handler(lw, req); err != nil {
		writeError(lw, err)
	}
	lw.finish()
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// route maps method and path to an operation.
func (d *Domain) route(r *http.Request) (route, error) {
	path := r.URL.Path
	if rt, ok, err := d.oidcRoute(r); ok {
		return rt, err
	}
	if path == "/oauth2/v1/token" {
		if r.Method != http.MethodPost {
			return route{}, methodNotAllowed(http.MethodPost)
		}
		return route{op: OpToken}, nil
	}
	notFound := func() error {
		return errorf(http.StatusNotFound, "", "error.common.common.resourceNotFound", "No resource found at %s.", path)
	}
	rest, ok := strings.CutPrefix(path, "/admin/v1/")
	if !ok {
		return route{}, notFound()
	}
	kind, id, hasID := strings.Cut(strings.TrimSuffix(rest, "/"), "/")
	if hasID && (id == "" || strings.Contains(id, "/")) {
		return route{}, notFound()
	}
	switch kind {
	case "Users":
		return resourceRoute(r.Method, id, hasID, resourceOps{OpCreateUser, OpListUsers, OpSearchUsers, OpGetUser, OpPutUser, OpPatchUser, OpDeleteUser, d.userH})
	case "Groups":
		return resourceRoute(r.Method, id, hasID, resourceOps{OpCreateGroup, OpListGroups, OpSearchGroups, OpGetGroup, OpPutGroup, OpPatchGroup, OpDeleteGroup, d.groupH})
	case "ServiceProviderConfig", "ResourceTypes", "Schemas":
		return d.discoveryRoute(r.Method, kind, id, hasID)
	case "Bulk":
		if hasID {
			return route{}, notFound()
		}
		if r.Method != http.MethodPost {
			return route{}, methodNotAllowed(http.MethodPost)
		}
		return route{op: OpBulk, handler: d.bulk}, nil
	case "UserCapabilitiesChanger":
		if !hasID || r.Method != http.MethodPut {
			return route{}, methodNotAllowed(http.MethodPut)
		}
		return route{op: OpPutUserCapabilitiesChanger, handler: d.putCapabilities, id: id}, nil
	}
	return route{}, notFound()
}

// discoveryRoute routes the read-only SCIM discovery endpoints
// (ServiceProviderConfig, ResourceTypes, Schemas).
func (d *Domain) discoveryRoute(method, kind, id string, hasID bool) (route, error) {
	if method != http.MethodGet {
		return route{}, methodNotAllowed(http.MethodGet)
	}
	switch {
	case kind == "ServiceProviderConfig":
		return route{op: OpGetServiceProviderConfig, handler: d.getServiceProviderConfig, id: id}, nil
	case kind == "ResourceTypes" && hasID:
		return route{op: OpGetResourceType, handler: d.getResourceTypes, id: id}, nil
	case kind == "ResourceTypes":
		return route{op: OpListResourceTypes, handler: d.getResourceTypes}, nil
	case hasID:
		return route{op: OpGetSchema, handler: d.getSchemas, id: id}, nil
	}
	return route{op: OpListSchemas, handler: d.getSchemas}, nil
}

// resourceOps are the operations and handlers of one resource type.
type resourceOps struct {
	create, list, search, get, put, patch, del Operation
	h                                          *resourceHandlers
}

// resourceRoute routes a request on a resource type's collection
// (list, create, .search) or on one resource (get, put, patch, delete).
func resourceRoute(method, id string, hasID bool, o resourceOps) (route, error) {
	switch {
	case !hasID && method == http.MethodGet:
		return route{op: o.list, handler: o.h.list}, nil
	case !hasID && method == http.MethodPost:
		return route{op: o.create, handler: o.h.create}, nil
	case !hasID:
		return route{}, methodNotAllowed(http.MethodGet, http.MethodPost)
	case id == ".search" && method == http.MethodPost:
		return route{op: o.search, handler: o.h.search}, nil
	case id == ".search":
		return route{}, methodNotAllowed(http.MethodPost)
	}
	switch method {
	case http.MethodGet:
		return route{op: o.get, handler: o.h.get, id: id}, nil
	case http.MethodPut:
		return route{op: o.put, handler: o.h.put, id: id}, nil
	case http.MethodPatch:
		return route{op: o.patch, handler: o.h.patch, id: id}, nil
	case http.MethodDelete:
		return route{op: o.del, handler: o.h.del, id: id}, nil
	}
	return route{}, methodNotAllowed(http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete)
}

// resourceHandlers are the handlers of one resource type.
type resourceHandlers struct {
	create, list, search, get, put, patch, del handlerFunc
}

// resourceHandlersOf are the handlers of kind's resource type: create, put
// and patch are its own, the reads and delete the generic ones.
func resourceHandlersOf[T keyed](d *Domain, kind func() kindOps[T], create, put, patch handlerFunc) *resourceHandlers {
	rt := kind().rt
	return &resourceHandlers{
		create: create, get: getHandler(d, kind),
		list:   listHandler(d, rt, kind, parseListQuery),
		search: listHandler(d, rt, kind, parseSearchBody),
		put:    put, patch: patch, del: deleteHandler(d, kind),
	}
}

func methodNotAllowed(allow ...string) *scimError {
	e := errorf(http.StatusMethodNotAllowed, "", "error.common.common.methodNotAllowed", "Method not allowed. Allowed: %s.", strings.Join(allow, ", "))
	e.header = http.Header{"Allow": {strings.Join(allow, ", ")}}
	return e
}

// applyFaults answers the request itself (and returns false) when the rate
// limit or an injected error says so; it adds latency first.
func (d *Domain) applyFaults(w http.ResponseWriter, r *http.Request, op Operation) bool {
	f := d.faults.get()
	if !pause.For(r.Context(), f.Latency) {
		return false
	}
	bucket := bucketOthers
	switch op {
	case OpToken:
		bucket = bucketToken
	case OpBulk:
		bucket = bucketBulk
	}
	if !d.limiter.allow(bucket, d.clock.Now()) {
		d.stats.rateLimited()
		writeError(w, d.tooMany(f))
		return false
	}
	switch d.faults.draw() {
	case fault429:
		d.stats.fault()
		writeError(w, d.tooMany(f))
		return false
	case fault5xx:
		d.stats.fault()
		writeError(w, errorf(f.Status5xx, "", "error.common.common.internalServerError", "Injected fault: HTTP %d.", f.Status5xx))
		return false
	}
	return true
}

func (d *Domain) tooMany(f Faults) *scimError {
	e := errRateLimited()
	if f.RetryAfter > 0 {
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		e.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	}
	return e
}

// decodeBody reads a JSON request body into v.
func decodeBody(r *request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "", "error.common.common.payloadTooLarge", "Request body larger than %d bytes.", maxBody)
		}
		return errInvalidSyntax("Unreadable request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return errInvalidSyntax("The request body is empty.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errInvalidSyntax("The request body is not valid JSON: %v", err)
	}
	return nil
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
