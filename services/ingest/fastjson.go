package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// The webhook spends most of its CPU parsing request bodies, and most of
// that went to encoding/json: every Unmarshal checks its whole input
// before decoding it (Parse decoded an event object, then data.identity,
// then the values added and removed, then their meta, each a part of what
// was checked already), and it matches keys to struct fields by
// reflection. The fast path here checks a body once (validJSON, in parse)
// and then splits its objects and arrays with a small scanner that relies
// on that check. It fills the structs Parse reads exactly as encoding/json
// would; where it cannot be sure of that (a key that matches a field only
// when case is ignored, a nested object of the wrong JSON type) it gives
// up and encoding/json decodes the value instead, so that results and
// errors do not depend on which of the two read it. A body that is not
// valid JSON never takes the fast path: encoding/json reports what is
// wrong with it, as before.

// jsonDecoder decodes the JSON values Parse reads out of one body.
type jsonDecoder struct {
	// fast says the body is valid JSON, so the scanner below may read any
	// value in it. Tests turn it off to compare with encoding/json.
	fast bool
}

// fastDecoder is a struct of rawJSON fields the fast path can fill: the
// contract every decodeFast keeps (the tests hold each to it). Callers
// call decodeFast on the concrete type, never through this interface: a
// value reached through an interface moves to the heap.
type fastDecoder interface {
	// decodeFast stores the members of the JSON object at b[i] (a part of a
	// checked body) in the receiver as json.Unmarshal would, and returns
	// the index just past the object, or -1 when it cannot be sure to do
	// the same as json.Unmarshal (the receiver may then be partly filled).
	decodeFast(b []byte, i int) int
}

// array is the elements of the JSON array raw, as json.Unmarshal into a
// []rawJSON gives them, for a raw value known to be valid JSON (a part of
// a checked body, as every rawJSON is): on the fast path a scan of raw
// instead of a check and a decode by reflection.
func (d jsonDecoder) array(raw []byte) ([]rawJSON, error) {
	if d.fast && jsonKindOf(raw) == kindArray {
		return arrayElems(raw), nil
	}
	var v []rawJSON
	err := decodeCopy(raw, &v)
	return v, err
}

// object is the members of the JSON object raw, as json.Unmarshal into a
// map[string]rawJSON gives them (see array).
func (d jsonDecoder) object(raw []byte) (map[string]rawJSON, error) {
	if d.fast && jsonKindOf(raw) == kindObject {
		return objectMap(raw), nil
	}
	var v map[string]rawJSON
	err := decodeCopy(raw, &v)
	return v, err
}

// decodeCopy is json.Unmarshal(raw, v) through a copy of *v, for a v its
// caller keeps on its stack: handed to encoding/json, v would move to the
// heap on every call, the fast path's included. A caller tries v's
// decodeFast first, where d.fast allows it:
//
//	if !d.fast || v.decodeFast(raw, 0) < 0 {
//		err = decodeCopy(raw, &v)
//	}
func decodeCopy[T any](raw []byte, v *T) error {
	tmp := new(T)
	err := json.Unmarshal(raw, tmp)
	*v = *tmp
	return err
}

// A rawField is a struct field the fast path fills: the name encoding/json
// knows it by (its json tag) and where its value goes. A nil raw marks the
// one field of struct type, which decodeFields hands to nested.
type rawField struct {
	name string
	raw  *rawJSON
}

// decodeFields fills fields from the members of the JSON object at b[i]
// as encoding/json fills a struct: the value of a member whose key is a
// field's name is stored in the field (a repeated key overwrites it), and
// members that match no field are skipped. It returns the index just past
// the object, or -1 when it is not one, when a key matches a name only
// when case is ignored (encoding/json would store it by Unicode case
// folding; that is left to it), or when nested returns -1. nested decodes
// the value at b[i] and returns the index just past it, like decodeFields,
// so that a nested object is scanned once.
func decodeFields(b []byte, i int, fields []rawField, nested func(b []byte, i int) int) int {
	if i = skipSpace(b, i); i >= len(b) || b[i] != '{' {
		return -1
	}
	return walkObject(b, i, func(key []byte, i int) int {
		f, sure := matchField(key, fields)
		switch {
		case !sure:
			return -1
		case f >= 0 && fields[f].raw == nil:
			return nested(b, i)
		}
		end := valueEnd(b, i)
		if f >= 0 {
			*fields[f].raw = b[i:end]
		}
		return end
	})
}

// matchField finds the field encoding/json stores the member with the key
// lit (a JSON string literal) in: the index of the field named exactly as
// the key, which encoding/json prefers, or -1 when no field's name matches
// the key, even ignoring case (the member is skipped). sure is false for a
// key that matches a name only ignoring case.
func matchField(lit []byte, fields []rawField) (i int, sure bool) {
	// Most keys are a field's name as it is, escapes and all.
	if i := exactField(lit[1:len(lit)-1], fields); i >= 0 {
		return i, true
	}
	key, ascii := memberKey(lit)
	if i := exactField(key, fields); i >= 0 {
		return i, true // a name spelt with escapes
	}
	for i := range fields {
		// An ASCII key can match only names as long as itself (the names
		// are ASCII), even ignoring case.
		if (!ascii || len(key) == len(fields[i].name)) && strings.EqualFold(string(key), fields[i].name) {
			return -1, false
		}
	}
	return -1, true
}

// exactField is the index of the field named key, or -1.
func exactField(key []byte, fields []rawField) int {
	for i := range fields {
		if string(key) == fields[i].name {
			return i
		}
	}
	return -1
}

// isNull reports whether the value at b[i] of a checked body is null.
// Decoding into a struct field, encoding/json leaves the struct as it is
// for a null; so do the decodeFast of eventData and ociDetails (an object
// fills it, a repeated key adding to what the first one set, and any other
// type is encoding/json's type error, left to it: -1).
func isNull(b []byte, i int) bool { return b[i] == 'n' }

// The decodeFast methods name each struct's fields as their json tags do;
// TestFastPathFields checks that they name them all, and rightly.

func (e *rawEnvelope) decodeFast(b []byte, i int) int {
	return decodeFields(b, i, []rawField{
		{"cloudEventsVersion", &e.CloudEventsVersion},
		{"eventType", &e.EventType},
		{"eventID", &e.EventID},
		{"eventId", &e.EventIDLower},
		{"eventTime", &e.EventTime},
		{"specversion", &e.SpecVersion},
		{"type", &e.Type},
		{"id", &e.ID},
		{"time", &e.Time},
		{"oracle", &e.Oracle},
		{"data", nil},
		{"logContent", &e.LogContent},
		{"ConfirmationURL", &e.ConfirmationURL},
	}, func(b []byte, i int) int {
		if isNull(b, i) {
			return i + len("null")
		}
		return e.Data.decodeFast(b, i)
	})
}

func (d *eventData) decodeFast(b []byte, i int) int {
	return decodeFields(b, i, []rawField{
		{"resourceName", &d.ResourceName},
		{"resourceId", &d.ResourceID},
		{"eventName", &d.EventName},
		{"additionalDetails", nil},
		{"identity", &d.Identity},
	}, func(b []byte, i int) int {
		if isNull(b, i) {
			return i + len("null")
		}
		return d.AdditionalDetails.decodeFast(b, i)
	})
}

func (d *ociDetails) decodeFast(b []byte, i int) int {
	return decodeFields(b, i, []rawField{
		{"eventId", &d.EventID},
		{"adminResourceId", &d.AdminResourceID},
		{"adminResourceName", &d.AdminResourceName},
		{"adminResourceType", &d.AdminResourceType},
		{"adminResourceOcid", &d.AdminResourceOcid},
		{"adminRefResourceId", &d.AdminRefResourceID},
		{"adminRefResourceName", &d.AdminRefResourceName},
		{"adminRefResourceType", &d.AdminRefResourceType},
		{"adminRefResourceOcid", &d.AdminRefResourceOcid},
		{"adminValuesAdded", &d.AdminValuesAdded},
		{"adminValuesRemoved", &d.AdminValuesRemoved},
		{"actorId", &d.ActorID},
		{"actorOcid", &d.ActorOcid},
		{"actorName", &d.ActorName},
		{"actorDisplayName", &d.ActorDisplayName},
		{"actorType", &d.ActorType},
		{"domainName", &d.DomainName},
		{"domainDisplayName", &d.DomainDisplayName},
		{"domainId", &d.DomainID},
		{"domainUrl", &d.DomainURL},
		{"userId", &d.UserID},
		{"groupId", &d.GroupID},
	}, nil)
}

func (a *auditIdentity) decodeFast(b []byte, i int) int {
	return decodeFields(b, i, []rawField{
		{"principalId", &a.PrincipalID},
		{"principalName", &a.PrincipalName},
	}, nil)
}

func (m *scimMember) decodeFast(b []byte, i int) int {
	return decodeFields(b, i, []rawField{
		{"value", &m.Value},
		{"display", &m.Display},
		{"name", &m.Name},
		{"type", &m.Type},
		{"ocid", &m.Ocid},
	}, nil)
}

func (m *scimMeta) decodeFast(b []byte, i int) int {
	return decodeFields(b, i, []rawField{{"location", &m.Location}}, nil)
}

// objectMap is the fast path's map[string]rawJSON of a JSON object of a
// checked body: the last of repeated keys wins, as in encoding/json.
func objectMap(obj []byte) map[string]rawJSON {
	m := make(map[string]rawJSON)
	walkObject(obj, skipSpace(obj, 0), func(lit []byte, i int) int {
		key, _ := memberKey(lit)
		end := valueEnd(obj, i)
		m[string(key)] = obj[i:end]
		return end
	})
	return m
}

// arrayElems is the fast path's []rawJSON of a JSON array of a checked
// body: the elements' bytes, non-nil even when there are none, as from
// encoding/json.
func arrayElems(arr []byte) []rawJSON {
	out := []rawJSON{}
	i := skipSpace(arr, 0) + 1 // past '['
	for {
		i = skipSpace(arr, i)
		if i >= len(arr) || arr[i] == ']' {
			return out
		}
		if arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
		end := valueEnd(arr, i)
		out = append(out, arr[i:end])
		i = end
	}
}

// walkObject calls member for each member of the JSON object at b[i] (a
// '{' of a checked body, which is not checked again) with its key, a JSON
// string literal, and the index of its value; member returns the index
// just past the value, or -1 to stop. walkObject returns the index just
// past the object, or -1 if member stopped it.
func walkObject(b []byte, i int, member func(key []byte, i int) int) int {
	for i = skipSpace(b, i+1); i < len(b) && b[i] != '}'; i = skipSpace(b, i) {
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		keyEnd := stringEnd(b, i)
		if i = member(b[i:keyEnd], skipSpace(b, skipSpace(b, keyEnd)+1)); i < 0 {
			return -1
		}
	}
	return i + 1
}

// memberKey decodes a member's key, a JSON string literal of a checked
// body, as encoding/json does (escapes are rare; encoding/json decodes
// them), and says whether it is ASCII.
func memberKey(lit []byte) (key []byte, ascii bool) {
	s := lit[1 : len(lit)-1]
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
				return s, false
			}
			var k string
			_ = json.Unmarshal(lit, &k)
			return []byte(k), isASCII([]byte(k))
		}
	}
	return s, true
}

// valueEnd returns the index just past the JSON value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for ; i < len(b); i++ { // a number, true, false or null
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the JSON string that starts at b[i].
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipSpace returns the index of the first byte at or after b[i] that is
// not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// maxNestingDepth is encoding/json's limit on nested arrays and objects.
const maxNestingDepth = 10000

// validJSON answers as json.Valid(b) does (FuzzEnvelopeFastPath checks
// that it always does) in less than half the time: json.Valid steps a
// state machine through an indirect call per byte, and with it the body's
// check was a quarter of the fast path's parse. As in encoding/json,
// strings may hold any bytes but control characters (invalid UTF-8 is for
// checkUnicode to refuse).
func validJSON(b []byte) bool {
	var buf [32]bool
	inObject := buf[:0] // the open arrays and objects: true for an object
	i := skipSpace(b, 0)
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return false
		}
		if c := b[i]; c == '{' || c == '[' {
			if len(inObject) == maxNestingDepth {
				return false
			}
			var empty bool
			if i, empty = openValue(b, i); i < 0 {
				return false
			}
			if !empty {
				inObject = append(inObject, c == '{')
				continue
			}
		} else if i = validScalar(b, i); i < 0 {
			return false
		}
		closed, done := 0, false
		if i, closed, done = afterValue(b, i, inObject); done {
			return i == len(b)
		}
		if i < 0 {
			return false
		}
		inObject = inObject[:len(inObject)-closed]
	}
}

// openValue reads the start of the array or object at b[i]: it returns the
// index of its first value (after the key, in an object), or, when it is
// empty, the index after it; next < 0 when the input is not JSON.
func openValue(b []byte, i int) (next int, empty bool) {
	obj := b[i] == '{'
	i = skipSpace(b, i+1)
	if i < len(b) && (obj && b[i] == '}' || !obj && b[i] == ']') {
		return i + 1, true
	}
	if obj {
		return validKey(b, i), false
	}
	return i, false
}

// validScalar returns the index after the string, literal or number at
// b[i], or -1 when there is none.
func validScalar(b []byte, i int) int {
	switch b[i] {
	case '"':
		return validString(b, i)
	case 't':
		return validLiteral(b, i, "true")
	case 'f':
		return validLiteral(b, i, "false")
	case 'n':
		return validLiteral(b, i, "null")
	}
	return validNumber(b, i)
}

// afterValue reads what follows a value ending at b[i] inside the arrays
// and objects open (true: an object, the innermost last): the ends of those
// the value closes, then a comma and, in an object, the next key. It
// returns the index of the next value and how many of open it closed; done
// when it closed them all (next is then past the space after them, where
// the input must end); next < 0 when the input is not JSON.
func afterValue(b []byte, i int, open []bool) (next, closed int, done bool) {
	for {
		i = skipSpace(b, i)
		depth := len(open) - closed
		if depth == 0 {
			return i, closed, true
		}
		if i >= len(b) {
			return -1, closed, false
		}
		obj := open[depth-1]
		if c := b[i]; obj && c == '}' || !obj && c == ']' {
			closed++
			i++
			continue
		}
		if b[i] != ',' {
			return -1, closed, false
		}
		i = skipSpace(b, i+1)
		if obj {
			i = validKey(b, i)
		}
		return i, closed, false
	}
}

// validKey checks an object's key and colon at b[i] and returns the index
// of the value after them, or -1.
func validKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validString(b, i); i < 0 {
		return -1
	}
	if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// validString checks the string at b[i] (a '"') and returns the index just
// past it, or -1.
func validString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < ' ':
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if _, ok := hex4(b, i+1); !ok {
					return -1
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// validLiteral checks that true, false or null is at b[i] and returns the
// index just past it, or -1.
func validLiteral(b []byte, i int, lit string) int {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return -1
	}
	return i + len(lit)
}

// validNumber checks the number at b[i] and returns the index just past
// it, or -1: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return -1
		}
		i = digits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		i = digits(b, i)
	}
	return i
}

// digits returns the index of the first byte at or after b[i] that is not
// a digit.
func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
