package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// newFastDecoders is a zero value of each struct the fast path fills.
func newFastDecoders() []fastDecoder {
	return []fastDecoder{new(rawEnvelope), new(eventData), new(ociDetails), new(auditIdentity), new(scimMember), new(scimMeta)}
}

// fastPathSeeds are bodies that try the corners of encoding/json's
// decoding the fast path must reproduce or leave to it.
var fastPathSeeds = []string{
	// Keys spelt with escapes, case variants of field names (ASCII and by
	// Unicode folding: ſ folds to s), the two eventID fields.
	`{"event\u0054ype":"com.oraclecloud.identitycontrolplane.createuser","eventID":"e1","data":{"additionalDetails":{"adminResourceId":"u1"}}}`,
	`{"EventType":"com.oraclecloud.identitycontrolplane.createuser","eventID":"e1","data":{"additionalDetails":{"adminResourceId":"u1"}}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","eventID":"e1","data":{"additionalDetails":{"adminReſourceId":"u1","adminResourceId":"u2"}}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","eventId":"e1","eventID":"e2","EVENTID":"e3","data":{"additionalDetails":{"adminResourceId":"u1"}}}`,
	`{"confirmationurl":"https://x","ConfirmationURL":"https://y"}`,
	`{"ConfirmationURL":"https://y","data":"x"}`,
	// Repeated keys: the last wins; a repeated object adds to the first.
	`{"eventType":"x","eventType":"com.oraclecloud.identitycontrolplane.createuser","eventID":"e1","eventID":"e2","data":{"additionalDetails":{"adminResourceId":"u1","adminResourceId":"u2"}}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":{"additionalDetails":{"adminResourceId":"u1"}},"data":{"resourceName":"n","additionalDetails":{"actorName":"a"}}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":{"additionalDetails":{"adminResourceId":"u1"}},"data":null}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":null,"data":{"additionalDetails":{"adminResourceId":"u1"}}}`,
	// data and additionalDetails of every JSON type.
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":null}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":"x"}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":-1.5e+3}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":[{"additionalDetails":{}}]}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":true}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":{"additionalDetails":false,"resourceId":"u1"}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":{"additionalDetails":null,"resourceId":"u1"}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":{}}`,
	`{}`,
	`[]`,
	`[{}, null, 1, "x", [], {"logContent": {"eventType":"com.oraclecloud.identitycontrolplane.createuser","data":{"additionalDetails":{"adminResourceId":"u1"}}}}]`,
	// Whitespace everywhere, strings with escapes and brackets, unicode.
	" { \"eventType\" :\t\"com.oraclecloud.identitycontrolplane.createuser\" ,\r\n \"eventID\" : \"e1\" , \"data\" : { \"additionalDetails\" : { \"adminResourceId\" : \"u1\" } , \"x\" : [ 1 , { } , [ ] ] } } ",
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","eventID":"e\"}{][\\","data":{"resourceName":"a\\\"b","additionalDetails":{"adminResourceId":"\"}","x":"\\","adminResourceName":"\u00e9\ud83d\ude00 é✓"}}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.createuser","eventID":"é","data":{"additionalDetails":{"adminResourceId":"ü","ключ":"значение","\u00fc":1}}}`,
	// Values and members read later: a JSON-encoded string, case variants
	// and repeats, members of every type, data.identity.
	`{"eventType":"com.oraclecloud.identitycontrolplane.updategroup","eventID":"e1","data":{"identity":{"principalName":"p","principalId":"i","PrincipalId":"j"},"additionalDetails":{"adminResourceId":"g1","adminValuesAdded":"{\"members\":[{\"value\":\"u1\",\"Value\":\"u2\"},\"u3\",{\"display\":\"d\",\"value\":\"u4\",\"value\":\"u5\"}],\"meta\":{\"location\":\"https://a.example/x\",\"location\":\"https://b.example/y\"}}","adminValuesRemoved":{"members":[{"ocid":"ocid1.user.oc1..x","type":"Group","name":"n"}],"displayName":"x","displayName":"y"}}}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.updateuser","eventID":"e1","data":{"additionalDetails":{"adminResourceId":"u1","adminValuesAdded":{"meta":{"Location":"https://a.example/x"},"name":{"a":1}}}}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.addusertogroup","eventID":"e1","data":{"additionalDetails":{"adminResourceId":"g1","adminValuesAdded":{"members":[1]}}}}`,
	`{"eventType":"com.oraclecloud.identitycontrolplane.addusertogroup","eventID":"e1","data":{"additionalDetails":{"adminResourceId":"g1","adminValuesAdded":"{\"members\":[{\"value\":\"u\"}]} x"}}}`,
}

// parseWith is Parse, on the fast path or with encoding/json alone.
func parseWith(hdr http.Header, body []byte, fast bool) (*Batch, error) {
	b, err := parse(hdr, body, parseTestNow, fast)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// FuzzEnvelopeFastPath checks the fast path against encoding/json: validJSON
// answers as json.Valid does, every struct, map and slice the fast path
// fills (unless it declines) is what json.Unmarshal fills, byte for byte,
// and Parse returns the same events and errors either way.
func FuzzEnvelopeFastPath(f *testing.F) {
	for _, fx := range fixtures(f) {
		f.Add(fx.headers, fx.body)
	}
	for _, s := range fastPathSeeds {
		f.Add("", []byte(s))
	}
	f.Fuzz(func(t *testing.T, headers string, body []byte) {
		valid := json.Valid(body)
		if got := validJSON(body); got != valid {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", body, got, valid)
		}
		if valid {
			checkFastDecode(t, body, 3)
		}
		hdr := parseHeaderLines(headers)
		render := func(fast bool) []byte {
			b, err := parseWith(hdr, body, fast)
			return renderBatch(t, b, err)
		}
		if got, want := render(true), render(false); !bytes.Equal(got, want) {
			t.Fatalf("Parse(%q) on the fast path:\n%s\nwith encoding/json:\n%s", body, got, want)
		}
	})
}

// checkFastDecode decodes the valid JSON raw with the fast path as each
// type it fills and checks that it agrees with encoding/json, and so on for
// the elements and member values of raw, down to depth levels.
func checkFastDecode(t *testing.T, raw []byte, depth int) {
	t.Helper()
	refs := newFastDecoders()
	for i, fast := range newFastDecoders() {
		ref := refs[i]
		end := fast.decodeFast(raw, 0)
		if end < 0 {
			continue // declined: encoding/json decodes it
		}
		if skipSpace(raw, end) != len(raw) {
			t.Fatalf("%T.decodeFast(%q) ended at %d of %d", fast, raw, end, len(raw))
		}
		if err := json.Unmarshal(raw, ref); err != nil {
			t.Fatalf("%T.decodeFast(%q) took what json.Unmarshal refuses: %v", fast, raw, err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%T.decodeFast(%q):\n%s\njson.Unmarshal:\n%s", fast, raw, dumpRaw(fast), dumpRaw(ref))
		}
	}
	var dec jsonDecoder
	dec.fast = true
	var refSlice []rawJSON
	if jsonKindOf(raw) == kindArray {
		slice, err := dec.array(raw)
		if err != nil || json.Unmarshal(raw, &refSlice) != nil || !reflect.DeepEqual(slice, refSlice) {
			t.Fatalf("array %q: fast path %q (%v), json.Unmarshal %q", raw, slice, err, refSlice)
		}
		for _, el := range slice {
			if depth > 1 {
				checkFastDecode(t, el, depth-1)
			}
		}
	}
	var refMap map[string]rawJSON
	if jsonKindOf(raw) == kindObject {
		m, err := dec.object(raw)
		if err != nil || json.Unmarshal(raw, &refMap) != nil || !reflect.DeepEqual(m, refMap) {
			t.Fatalf("object %q: fast path %q (%v), json.Unmarshal %q", raw, m, err, refMap)
		}
		for _, v := range m {
			if depth > 1 {
				checkFastDecode(t, v, depth-1)
			}
		}
	}
}

// dumpRaw shows a filled struct with its rawJSON fields as text.
func dumpRaw(v any) string {
	var b strings.Builder
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		if f.Kind() == reflect.Struct {
			fmt.Fprintf(&b, "%s: {\n%s}\n", rv.Type().Field(i).Name, dumpRaw(f.Addr().Interface()))
			continue
		}
		fmt.Fprintf(&b, "%s: %q\n", rv.Type().Field(i).Name, f.Bytes())
	}
	return b.String()
}

// TestFastPathFields checks that each struct's fast path knows every field
// by its json tag, and declines a key that matches one only ignoring case.
func TestFastPathFields(t *testing.T) {
	for i, zero := range newFastDecoders() {
		typ := reflect.TypeOf(zero).Elem()
		var obj []string
		for i := range typ.NumField() {
			name := typ.Field(i).Tag.Get("json")
			val := fmt.Sprintf("%q", "value of "+name)
			if typ.Field(i).Type.Kind() == reflect.Struct {
				val = "{}"
			}
			obj = append(obj, fmt.Sprintf("%q:%s", name, val))
		}
		raw := []byte("{" + strings.Join(obj, ",") + "}")
		if zero.decodeFast(raw, 0) < 0 {
			t.Fatalf("%T declined %s", zero, raw)
		}
		checkFastDecode(t, raw, 1)
		if fast := newFastDecoders()[i]; fast.decodeFast(bytes.ToUpper(raw), 0) >= 0 {
			t.Errorf("%T took the case variants in %s", fast, bytes.ToUpper(raw))
		}
	}
}

// TestFastPathTakesFixtures checks that what OCI sends takes the fast path:
// every event object of the fixtures (in a batch, wrapped in logContent)
// decodes without falling back to encoding/json.
func TestFastPathTakesFixtures(t *testing.T) {
	for _, fx := range fixtures(t) {
		body := bytes.TrimSpace(fx.body)
		objects := []rawJSON{body}
		if body[0] == '[' {
			objects = arrayElems(body)
		}
		for _, raw := range objects {
			var env rawEnvelope
			if env.decodeFast(raw, 0) < 0 {
				t.Errorf("%s: the fast path declined %s", fx.name, raw)
			}
			if jsonKindOf(env.LogContent) == kindObject {
				var inner rawEnvelope
				if inner.decodeFast(env.LogContent, 0) < 0 {
					t.Errorf("%s: the fast path declined %s", fx.name, env.LogContent)
				}
			}
		}
	}
}

// TestValidJSONDepth checks validJSON at encoding/json's nesting limit.
func TestValidJSONDepth(t *testing.T) {
	for _, depth := range []int{maxNestingDepth - 1, maxNestingDepth, maxNestingDepth + 1} {
		for _, s := range []string{
			strings.Repeat("[", depth) + strings.Repeat("]", depth),
			strings.Repeat(`{"a":`, depth-1) + "{}" + strings.Repeat("}", depth-1),
			strings.Repeat(`[{"a":`, depth/2) + "0" + strings.Repeat("}]", depth/2),
		} {
			if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
				t.Errorf("depth %d: validJSON = %v, json.Valid = %v", depth, got, want)
			}
		}
	}
}

// TestFastPathErrors checks that bodies the fast path leaves to
// encoding/json keep their errors: a type error in data, a case variant.
func TestFastPathErrors(t *testing.T) {
	for _, body := range fastPathSeeds {
		_, ferr := parseWith(nil, []byte(body), true)
		_, serr := parseWith(nil, []byte(body), false)
		var fe, se *parseError
		if errors.As(ferr, &fe) != errors.As(serr, &se) || (fe != nil && *fe != *se) {
			t.Errorf("%s: fast path %v, encoding/json %v", body, ferr, serr)
		}
	}
}
