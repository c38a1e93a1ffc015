package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// maxBatchEntries is the most entries one request body may carry. A
// Connector Hub batch with more is rejected whole (too_many_events).
const maxBatchEntries = 10000

// Batch is what one webhook request body carried.
type Batch struct {
	// Events are the identity changes, in the order they were delivered (a
	// group update that changed members yields several, see classify.go).
	// Domain is left empty: the handler maps OciDomainName, OciDomainId or
	// OciDomainUrl to the short name the configuration gives the domain.
	// ReceivedAt is the now passed to Parse.
	Events []*iamflowv1.IdentityEvent
	// Unknown are well-formed events that are not identity changes iamflow
	// acts on (other services, policies, sign-ons, failed operations): they
	// are acknowledged and counted, not published.
	Unknown []Unknown
	// Confirmation is set when the request was a Notifications
	// SubscriptionConfirmation; Events and Unknown are then empty. Whether the
	// URL is fetched is the handler's decision.
	Confirmation *Confirmation
}

// Unknown names an event that was not published.
type Unknown struct {
	// ID is the event's id as delivered, or a sha256: id derived from its bytes.
	ID string
	// Type is the OCI event type or audit eventId that was not recognised (for
	// a failed operation, the ".failure" eventId).
	Type string
}

// Confirmation is a Notifications subscription confirmation request.
type Confirmation struct {
	URL            string // X-OCI-NS-ConfirmationURL, or ConfirmationURL in the body
	SubscriptionID string // X-OCI-NS-SubscriptionId
	TopicID        string // X-OCI-NS-TopicOcid
}

// Stable parseError codes.
const (
	codeMalformedJSON    = "malformed_json"    // the body is not JSON (or is empty)
	codeUnsupportedShape = "unsupported_shape" // JSON, but none of the shapes OCI sends
	codeMissingField     = "missing_field"     // a field an identity event needs is absent
	codeWrongType        = "wrong_type"        // a field has the wrong JSON type
	codeTooManyEvents    = "too_many_events"   // more than maxBatchEntries entries
)

// parseError is every error Parse returns. Code is one of the code*
// constants; Path locates the problem in the body ("" for the body itself,
// "[3].logContent.data.eventType" for a field of the fourth entry); Msg says
// what was wrong, starting with the name of the field it is about.
type parseError struct {
	Code string
	Path string
	Msg  string
}

// Error reads like `body[3].logContent.data: additionalDetails is a number,
// want an object`, or `body is empty, want JSON: ...` for the body itself.
func (e *parseError) Error() string {
	loc := e.Path
	parent, last := loc, ""
	if i := strings.LastIndexByte(loc, '.'); i >= 0 {
		parent, last = loc[:i], loc[i+1:]
	} else if !strings.HasPrefix(loc, "[") {
		parent, last = "", loc
	}
	if last != "" && strings.HasPrefix(e.Msg, last+" ") {
		loc = parent
	}
	switch {
	case loc == "" && strings.HasPrefix(e.Msg, "body "):
		return e.Msg
	case loc == "":
		return "body: " + e.Msg
	case loc[0] == '[':
		return "body" + loc + ": " + e.Msg
	}
	return "body." + loc + ": " + e.Msg
}

func newParseError(code, path, format string, args ...any) *parseError {
	return &parseError{Code: code, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Notifications headers.
const (
	hdrMessageType     = "X-OCI-NS-MessageType"
	hdrConfirmationURL = "X-OCI-NS-ConfirmationURL"
	hdrSubscriptionID  = "X-OCI-NS-SubscriptionId"
	hdrTopicOCID       = "X-OCI-NS-TopicOcid"
)

// messageTypeKey is hdrMessageType as net/http stores it, looked up on
// every request without canonicalising it again (an allocation each).
var messageTypeKey = http.CanonicalHeaderKey(hdrMessageType)

// Parse reads one webhook request body (with its headers) and returns what it
// carried: a Notifications subscription confirmation, one OCI Events envelope
// (CloudEvents 0.1), one CloudEvents 1.0 event, or a Connector Hub batch (a
// JSON array of log entries, each possibly wrapped in logContent). Every error
// is a *parseError; no input makes it panic, and on error there is no partial
// result: one bad entry rejects the batch.
func Parse(hdr http.Header, body []byte, now time.Time) (*Batch, error) {
	b, err := parse(hdr, body, now, true)
	if err != nil {
		return nil, err // never a typed nil in a non-nil interface
	}
	return b, nil
}

// parse is Parse. fast lets it read a body that is valid JSON with the
// fast path of fastjson.go; tests turn it off to compare with encoding/json.
func parse(hdr http.Header, body []byte, now time.Time, fast bool) (*Batch, *parseError) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // a UTF-8 BOM
	body = bytes.TrimSpace(body)
	if err := checkUnicode(body); err != nil {
		return nil, err
	}
	if strings.EqualFold(strings.TrimSpace(hdr.Get(messageTypeKey)), "SubscriptionConfirmation") {
		return parseConfirmation(hdr, body)
	}
	if len(body) == 0 {
		return nil, newParseError(codeMalformedJSON, "", "body is empty, want JSON: an OCI event object or an array of log entries")
	}
	// One check of the whole body lets the fast path read every value in
	// it. A body that is not JSON goes to encoding/json, which says why.
	p := &batchParser{now: now, dec: jsonDecoder{fast: fast && validJSON(body)}}
	switch body[0] {
	case '[':
		entries, err := p.dec.array(body)
		if err != nil {
			return nil, jsonError("", err)
		}
		if len(entries) > maxBatchEntries {
			return nil, newParseError(codeTooManyEvents, "", "body is a batch of %d entries, more than the limit of %d", len(entries), maxBatchEntries)
		}
		for i, raw := range entries {
			if err := p.arrayEntry(raw, fmt.Sprintf("[%d]", i)); err != nil {
				return nil, err
			}
		}
	case '{':
		var env rawEnvelope
		err := p.decodeEnvelope(body, "", &env)
		if (err == nil || err.Code == codeWrongType) && env.isConfirmation() {
			return parseConfirmation(hdr, body)
		}
		if err != nil {
			return nil, err
		}
		if err := p.objectBody(body, &env); err != nil {
			return nil, err
		}
	default:
		var v rawJSON
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, jsonError("", err)
		}
		return nil, newParseError(codeUnsupportedShape, "", "body is %s, want a JSON object (an OCI Events envelope, a CloudEvents 1.0 event, a Connector Hub log entry or a subscription confirmation) or an array of log entries", jsonKindOf(v))
	}
	return &p.batch, nil
}

// jsonError turns an encoding/json error into a malformed_json parseError.
func jsonError(path string, err error) *parseError {
	what := "body"
	if path != "" {
		what = pathLast(path)
	}
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn) && strings.Contains(syn.Error(), "exceeded max depth"):
		return newParseError(codeMalformedJSON, path, "%s is nested too deeply (more than 10000 levels of arrays and objects)", what)
	case errors.As(err, &syn):
		return newParseError(codeMalformedJSON, path, "%s is not valid JSON: %v (at byte %d)", what, syn, syn.Offset)
	}
	return newParseError(codeMalformedJSON, path, "%s is not valid JSON: %v", what, err)
}

// decodeEnvelope decodes one event object at path. The containers every
// event must get right (data, data.additionalDetails) are typed, so that the
// object is scanned once; a wrong JSON type there is a wrong_type error.
func (p *batchParser) decodeEnvelope(raw []byte, path string, env *rawEnvelope) *parseError {
	if p.dec.fast && env.decodeFast(raw, 0) >= 0 {
		return nil
	}
	err := decodeCopy(raw, env)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		got, _, _ := strings.Cut(te.Value, " ") // "number 1e999" -> "number"
		switch got {
		case "string", "number":
			got = "a " + got
		case "array", "object":
			got = "an " + got
		case "bool":
			got = "a boolean"
		}
		return newParseError(codeWrongType, pathJoin(path, te.Field), "%s is %s, want an object", pathLast(te.Field), got)
	}
	return jsonError(path, err)
}

// parseConfirmation reads a Notifications SubscriptionConfirmation. The URL
// comes from the X-OCI-NS-ConfirmationURL header or, failing that, the body's
// ConfirmationURL; a body that is not JSON is tolerated when the header has it.
func parseConfirmation(hdr http.Header, body []byte) (*Batch, *parseError) {
	c := &Confirmation{
		URL:            strings.TrimSpace(hdr.Get(hdrConfirmationURL)),
		SubscriptionID: strings.TrimSpace(hdr.Get(hdrSubscriptionID)),
		TopicID:        strings.TrimSpace(hdr.Get(hdrTopicOCID)),
	}
	if c.URL == "" {
		switch {
		case len(body) == 0:
			return nil, newParseError(codeMissingField, "ConfirmationURL", "ConfirmationURL is missing: a SubscriptionConfirmation needs the %s header or a ConfirmationURL in the body, and the body is empty", hdrConfirmationURL)
		case body[0] != '{' && json.Valid(body):
			return nil, newParseError(codeUnsupportedShape, "", "body is %s, want a JSON object with ConfirmationURL (or the %s header)", jsonKindOf(body), hdrConfirmationURL)
		}
		var cb struct {
			ConfirmationURL rawJSON `json:"ConfirmationURL"`
		}
		if err := json.Unmarshal(body, &cb); err != nil {
			return nil, jsonError("", err)
		}
		u, err := getString(cb.ConfirmationURL, loc{field: "ConfirmationURL"})
		if err != nil {
			return nil, err
		}
		c.URL = strings.TrimSpace(u)
	}
	if c.URL == "" {
		return nil, newParseError(codeMissingField, "ConfirmationURL", "ConfirmationURL is missing: a SubscriptionConfirmation needs the %s header or a ConfirmationURL in the body", hdrConfirmationURL)
	}
	return &Batch{Confirmation: c}, nil
}

// rawEnvelope holds the top-level keys of every shape Parse recognises. Values
// stay raw so that their JSON types can be checked and reported by name.
type rawEnvelope struct {
	// CloudEvents 0.1 (OCI Events, legacy Audit).
	CloudEventsVersion rawJSON `json:"cloudEventsVersion"`
	EventType          rawJSON `json:"eventType"`
	EventID            rawJSON `json:"eventID"`
	EventIDLower       rawJSON `json:"eventId"`
	EventTime          rawJSON `json:"eventTime"`
	// CloudEvents 1.0 (and OCI Logging records).
	SpecVersion rawJSON `json:"specversion"`
	Type        rawJSON `json:"type"`
	ID          rawJSON `json:"id"`
	Time        rawJSON `json:"time"`
	Oracle      rawJSON `json:"oracle"` // OCI Logging metadata
	// Both. A wrong type here fails decoding (see decodeEnvelope); null
	// or absent, it is zero.
	Data eventData `json:"data"`
	// Connector Hub wrapper.
	LogContent rawJSON `json:"logContent"`
	// Notifications confirmation body.
	ConfirmationURL rawJSON `json:"ConfirmationURL"`
}

func (e *rawEnvelope) isEvents01() bool {
	return jsonPresent(e.CloudEventsVersion) || jsonPresent(e.EventType)
}

func (e *rawEnvelope) isCloudEvents10() bool {
	return jsonPresent(e.SpecVersion)
}

func (e *rawEnvelope) isConfirmation() bool {
	return jsonPresent(e.ConfirmationURL) && !e.isEvents01() && !e.isCloudEvents10() && !jsonPresent(e.LogContent)
}

// eventData is the layout of data in every event shape.
type eventData struct {
	ResourceName      rawJSON    `json:"resourceName"`
	ResourceID        rawJSON    `json:"resourceId"`
	EventName         rawJSON    `json:"eventName"`
	AdditionalDetails ociDetails `json:"additionalDetails"` // zero if null or absent
	Identity          rawJSON    `json:"identity"`
}

// ociEntry is one event, unwrapped, with the fields classification needs read
// and type-checked; the rest stays raw until the entry is known to be an
// identity change.
type ociEntry struct {
	path   string // of the event object: "", "logContent", "[3]", "[3].logContent"
	raw    []byte // the event object's bytes, for a derived id
	source iamflowv1.Source

	id, idField     string // the id as delivered, and the key it came from
	eventType       string
	timeRaw         rawJSON
	data            eventData // zero if absent
	auditEventID    string
	eventName       string
	derivedIDCached string
	dec             jsonDecoder // for the values read later
}

func (e *ociEntry) at(rel string) string { return pathJoin(e.path, rel) }

// eventID is the id as delivered or, if there is none, one derived from the
// entry's bytes so that exact duplicates still dedupe.
func (e *ociEntry) eventID() string {
	if e.id != "" {
		return e.id
	}
	if e.derivedIDCached == "" {
		sum := sha256.Sum256(e.raw)
		e.derivedIDCached = "sha256:" + hex.EncodeToString(sum[:16])
	}
	return e.derivedIDCached
}

type batchParser struct {
	now   time.Time
	dec   jsonDecoder
	batch Batch
}

// objectBody handles a body that is one JSON object (not a confirmation).
func (p *batchParser) objectBody(body []byte, env *rawEnvelope) *parseError {
	switch {
	case jsonPresent(env.LogContent):
		return p.wrapped(env, "", iamflowv1.Source_SOURCE_CONNECTOR_HUB)
	case env.isEvents01():
		return p.event(body, env, "", iamflowv1.Source_SOURCE_OCI_EVENTS)
	case env.isCloudEvents10():
		src := iamflowv1.Source_SOURCE_CLOUDEVENTS
		if jsonPresent(env.Oracle) {
			// A raw OCI Logging record, e.g. Connector Hub to Notifications.
			src = iamflowv1.Source_SOURCE_CONNECTOR_HUB
		}
		return p.event(body, env, "", src)
	}
	return newParseError(codeUnsupportedShape, "", "body is a JSON object with none of the keys of a known shape: want an OCI Events envelope (cloudEventsVersion, eventType), a CloudEvents 1.0 event (specversion, type), a Connector Hub log entry (logContent) or a Notifications subscription confirmation (ConfirmationURL)")
}

// arrayEntry handles one element of a Connector Hub batch.
func (p *batchParser) arrayEntry(raw rawJSON, path string) *parseError {
	if k := jsonKindOf(raw); k != kindObject {
		return newParseError(codeWrongType, path, "entry is %s, want an object (a log entry or an event)", k)
	}
	var env rawEnvelope
	if err := p.decodeEnvelope(raw, path, &env); err != nil {
		return err
	}
	if jsonPresent(env.LogContent) {
		return p.wrapped(&env, path, iamflowv1.Source_SOURCE_CONNECTOR_HUB)
	}
	if !env.isEvents01() && !env.isCloudEvents10() && !jsonPresent(env.Type) {
		return newParseError(codeUnsupportedShape, path, "entry has none of logContent, eventType, cloudEventsVersion, specversion or type: want an OCI audit log entry (possibly wrapped in logContent) or an Events envelope")
	}
	return p.event(raw, &env, path, iamflowv1.Source_SOURCE_CONNECTOR_HUB)
}

// wrapped unwraps {"datetime":..., "logContent": {...}, "regionId":...}.
func (p *batchParser) wrapped(outer *rawEnvelope, path string, src iamflowv1.Source) *parseError {
	path = pathJoin(path, "logContent")
	raw := outer.LogContent
	if k := jsonKindOf(raw); k != kindObject {
		return newParseError(codeWrongType, path, "logContent is %s, want an object (the log entry)", k)
	}
	var env rawEnvelope
	if err := p.decodeEnvelope(raw, path, &env); err != nil {
		return err
	}
	if !env.isEvents01() && !env.isCloudEvents10() && !jsonPresent(env.Type) {
		return newParseError(codeUnsupportedShape, path, "logContent has none of eventType, cloudEventsVersion, specversion or type: want an OCI audit log entry or an Events envelope")
	}
	return p.event(raw, &env, path, src)
}

// event reads one event object, classifies it and appends what it yields to
// the batch.
func (p *batchParser) event(raw []byte, env *rawEnvelope, path string, src iamflowv1.Source) *parseError {
	e := &ociEntry{path: path, raw: raw, source: src, dec: p.dec}
	if err := e.readHeader(env); err != nil {
		return err
	}
	if err := e.readData(env); err != nil {
		return err
	}
	if e.eventType == "" && e.auditEventID == "" && e.eventName == "" {
		field := "eventType"
		if !env.isEvents01() {
			field = "type"
		}
		return newParseError(codeMissingField, e.at(field), "%s is missing (and there is no data.eventName or data.additionalDetails.eventId): cannot tell what the event is", field)
	}

	c := classify(e.eventType, e.auditEventID, e.eventName)
	if !c.ok {
		p.batch.Unknown = append(p.batch.Unknown, Unknown{ID: e.eventID(), Type: c.unknownType})
		return nil
	}
	evs, err := p.identityEvents(e, c)
	if err != nil {
		return err
	}
	p.batch.Events = append(p.batch.Events, evs...)
	return nil
}

// readHeader reads the event's type, id and time: the CloudEvents 0.1
// names first when the object is an Events envelope, the 1.0 names first
// otherwise; the first one set wins.
func (e *ociEntry) readHeader(env *rawEnvelope) *parseError {
	path := e.path
	var err *parseError
	typeNames := [2]string{"eventType", "type"}
	types := [2]rawJSON{env.EventType, env.Type}
	idNames := [3]string{"eventID", "eventId", "id"}
	ids := [3]rawJSON{env.EventID, env.EventIDLower, env.ID}
	times := [2]rawJSON{env.EventTime, env.Time}
	if !env.isEvents01() {
		typeNames[0], typeNames[1] = typeNames[1], typeNames[0]
		types[0], types[1] = types[1], types[0]
		idNames = [3]string{"id", "eventID", "eventId"}
		ids = [3]rawJSON{env.ID, env.EventID, env.EventIDLower}
		times[0], times[1] = times[1], times[0]
	}
	for i, t := range types {
		if !jsonPresent(t) {
			continue
		}
		if e.eventType, err = getString(t, loc{path, typeNames[i]}); err != nil {
			return err
		}
		if e.eventType != "" {
			break
		}
	}
	for i, id := range ids {
		if !jsonPresent(id) {
			continue
		}
		if e.id, err = getString(id, loc{path, idNames[i]}); err != nil {
			return err
		}
		e.id = strings.TrimSpace(e.id)
		if e.id != "" {
			e.idField = idNames[i]
			break
		}
	}
	for _, t := range times {
		if jsonPresent(t) {
			e.timeRaw = t
			break
		}
	}
	return nil
}

// readData takes data and data.additionalDetails, objects (or absent/null)
// in every event, decoded with the envelope, and reads the names an audit
// record gives the event (data.eventName, additionalDetails.eventId).
func (e *ociEntry) readData(env *rawEnvelope) *parseError {
	e.data = env.Data
	var err *parseError
	if e.eventName, err = getString(e.data.EventName, loc{e.path, "data.eventName"}); err != nil {
		return err
	}
	if e.auditEventID, err = getString(e.data.AdditionalDetails.EventID, loc{e.path, "data.additionalDetails.eventId"}); err != nil {
		return err
	}
	e.auditEventID = strings.TrimSpace(e.auditEventID)
	return nil
}

// JSON helpers.

type jsonKind uint8

const (
	kindAbsent jsonKind = iota
	kindNull
	kindString
	kindNumber
	kindObject
	kindArray
	kindBool
)

func (k jsonKind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindString:
		return "a string"
	case kindNumber:
		return "a number"
	case kindObject:
		return "an object"
	case kindArray:
		return "an array"
	case kindBool:
		return "a boolean"
	}
	return "absent"
}

// kindOf reports the JSON type of a raw value that has already been checked
// (by encoding/json or validJSON). Parse asks this of every field it reads,
// so it skips whitespace with skipSpace: bytes.TrimLeft builds its set of
// bytes on every call, which cost almost a tenth of Parse's time.
func jsonKindOf(raw []byte) jsonKind {
	i := skipSpace(raw, 0)
	if i == len(raw) {
		return kindAbsent
	}
	switch raw[i] {
	case 'n':
		return kindNull
	case '"':
		return kindString
	case '{':
		return kindObject
	case '[':
		return kindArray
	case 't', 'f':
		return kindBool
	}
	return kindNumber
}

func jsonPresent(raw rawJSON) bool {
	k := jsonKindOf(raw)
	return k != kindAbsent && k != kindNull
}

// getString reads an optional string: absent and null read as "", any other
// type is a wrong_type error at path (whose last element names the field).
func getString(raw rawJSON, at loc) (string, *parseError) {
	switch k := jsonKindOf(raw); k {
	case kindAbsent, kindNull:
		return "", nil
	case kindString:
		return decodeString(raw), nil
	default:
		path := at.String()
		return "", newParseError(codeWrongType, path, "%s is %s, want a string", pathLast(path), k)
	}
}

// loc is a field's place in the body, base path and field name. It is joined
// into one string only when an error reports it, so the success path, which
// reads many fields, builds no paths.
type loc struct{ base, field string }

func (l loc) String() string { return pathJoin(l.base, l.field) }

// decodeString decodes a JSON string literal that encoding/json has checked.
// Invalid UTF-8 is replaced, so the result is always valid in a proto string.
func decodeString(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 {
		s := raw[1 : len(raw)-1]
		if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
			return string(s)
		}
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return ""
	}
	return strings.ToValidUTF8(out, "\uFFFD")
}

func pathJoin(path, rel string) string {
	switch {
	case rel == "":
		return path
	case path == "":
		return rel
	case rel[0] == '[':
		return path + rel
	}
	return path + "." + rel
}

func pathLast(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// checkUnicode refuses a body that is not valid UTF-8, or that escapes a
// UTF-16 surrogate without its pair (\ud800 alone): encoding/json would turn
// either into U+FFFD, silently changing a name, and with it what iamflow
// looks up and the event id it deduplicates on. JSON is UTF-8 (RFC 8259),
// so nothing OCI sends is refused.
func checkUnicode(body []byte) *parseError {
	if !utf8.Valid(body) {
		off := 0
		for off < len(body) {
			r, size := utf8.DecodeRune(body[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return newParseError(codeMalformedJSON, "", "body is not valid UTF-8 (at byte %d): JSON must be UTF-8, and iamflow does not replace what it cannot read", off)
	}
	for i := 0; i+1 < len(body); i++ {
		// The next backslash: IndexByte, because this runs on every
		// request and a loop over every byte was a tenth of Parse's time.
		j := bytes.IndexByte(body[i:], '\\')
		if j < 0 {
			break
		}
		if i += j; i+1 >= len(body) {
			break
		}
		if body[i+1] != 'u' {
			i++ // an escaped character, perhaps a backslash
			continue
		}
		r, ok := hex4(body, i+2)
		if !ok {
			continue // not an escape; the JSON decoder says what is wrong
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+11 < len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
				if lo, ok := hex4(body, i+8); ok && lo >= 0xDC00 && lo < 0xE000 {
					i += 11
					continue
				}
			}
			fallthrough
		case r >= 0xDC00 && r < 0xE000:
			return newParseError(codeMalformedJSON, "", "body has an unpaired UTF-16 surrogate \\u%04x (at byte %d): it is not a character, and iamflow does not replace what it cannot read", r, i)
		}
		i += 5
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape at b[at:].
func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// rawJSON is a JSON value kept as its bytes, like json.RawMessage, but
// without json.RawMessage's copy: it points into the body json.Unmarshal
// (or the fast path of fastjson.go) was given. Parse only reads a body
// while it parses it, and every string it returns is copied out
// (decodeString), so no rawJSON outlives the body it points into; the
// webhook's pooled body buffers rely on that.
type rawJSON []byte

// UnmarshalJSON keeps b itself. encoding/json's Unmarshal hands an
// Unmarshaler a slice of the input it was given, never a buffer of its own.
func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = b
	return nil
}
