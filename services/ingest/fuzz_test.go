package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/event"
)

var parseErrorCodes = map[string]bool{
	codeMalformedJSON: true, codeUnsupportedShape: true, codeMissingField: true, codeWrongType: true, codeTooManyEvents: true,
}

// FuzzParse checks that no headers and body make Parse panic, that every
// event it returns is one consumers can rely on, and that every error is a
// *ParseError that says what was wrong.
func FuzzParse(f *testing.F) {
	for _, fx := range fixtures(f) {
		f.Add(fx.headers, fx.body)
	}
	f.Add("", []byte(`[{"logContent":{"specversion":"1.0","type":"com.oraclecloud.identityControlPlane.UpdateGroup","data":{"additionalDetails":{"adminResourceId":"g","adminValuesAdded":"{\"members\":[{\"value\":\"u\"}],\"displayName\":\"x\"}"}}}}]`))
	f.Add("X-OCI-NS-MessageType: SubscriptionConfirmation\n", []byte(`{"ConfirmationURL":"https://x"}`))
	f.Add("", []byte("{\"eventType\":\"com.oraclecloud.identitycontrolplane.createuser\",\"eventID\":\"e\xff\",\"data\":{}}"))
	f.Fuzz(func(t *testing.T, headers string, body []byte) {
		hdr := parseHeaderLines(headers)
		b, err := Parse(hdr, body, parseTestNow)
		if err != nil {
			if b != nil {
				t.Fatalf("batch and error together: %v", err)
			}
			var pe *parseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is a %T, want *ParseError", err, err)
			}
			if !parseErrorCodes[pe.Code] {
				t.Fatalf("unknown code %q: %v", pe.Code, err)
			}
			if pe.Msg == "" || pe.Error() == "" {
				t.Fatalf("empty message for code %q", pe.Code)
			}
			return
		}
		if b == nil {
			t.Fatal("nil batch and nil error")
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8: %q", body)
		}
		if b.Confirmation != nil && b.Confirmation.URL == "" {
			t.Fatal("confirmation without a URL")
		}
		for i, ev := range b.Events {
			if ev.GetId() == "" {
				t.Fatalf("event %d has no id", i)
			}
			if event.KindToken(ev.GetKind()) == "" || event.ActionToken(ev.GetAction()) == "" {
				t.Fatalf("event %d: invalid kind %v or action %v", i, ev.GetKind(), ev.GetAction())
			}
			if ev.GetType() != event.Type(ev.GetKind(), ev.GetAction()) {
				t.Fatalf("event %d: type %q, want %q", i, ev.GetType(), event.Type(ev.GetKind(), ev.GetAction()))
			}
			v := proto.Clone(ev).(*iamflowv1.IdentityEvent)
			v.Domain = "fuzz"
			if err := event.Validate(v); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if _, err := event.Marshal(ev); err != nil {
				t.Fatalf("event %d does not encode: %v", i, err)
			}
			if ev.OccurredAt != nil && !ev.GetOccurredAt().IsValid() {
				t.Fatalf("event %d: invalid occurred_at %v", i, ev.GetOccurredAt())
			}
		}
		for i, u := range b.Unknown {
			if u.ID == "" {
				t.Fatalf("unknown %d has no id", i)
			}
		}
		// Parsing is deterministic, and the result holds nothing of the
		// body: the webhook reuses its body buffers once a request is done.
		own := bytes.Clone(body)
		again, err := Parse(hdr, own, parseTestNow)
		if err != nil || len(again.Events) != len(b.Events) || len(again.Unknown) != len(b.Unknown) {
			t.Fatalf("second parse differs: %v", err)
		}
		want := renderBatch(t, again, nil)
		clear(own)
		if got := renderBatch(t, again, nil); !bytes.Equal(got, want) {
			t.Fatalf("the result changed when the body was overwritten:\n%s\nwas\n%s", got, want)
		}
		for i := range b.Events {
			if !proto.Equal(b.Events[i], again.Events[i]) {
				t.Fatalf("event %d differs on a second parse", i)
			}
		}
	})
}

// FuzzUnicode checks checkUnicode against encoding/json: a body it lets
// through decodes without any character replaced by U+FFFD (one appears
// only when the body itself holds it, literally or escaped), and a body it
// refuses is one the decoder would have changed or cannot read.
func FuzzUnicode(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\ud800"}`, `{"a":"\\ud800"}`, "{\"a\":\"\xff\"}",
		`{"a":"\udc00\ud800"}`, `["\u00e9", "\uFFFD"]`, `"\ud83d\u0041"`, `"\\\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := checkUnicode(body)
		var v any
		if json.Unmarshal(body, &v) != nil {
			return // not JSON: Parse refuses it either way
		}
		replaced := false
		walkStrings(v, func(s string) { replaced = replaced || strings.ContainsRune(s, utf8.RuneError) })
		sentFFFD := bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
		if err == nil && replaced && !sentFFFD {
			t.Fatalf("checkUnicode let %q through, and decoding replaced a character", body)
		}
		if err != nil && !replaced {
			t.Fatalf("checkUnicode refused %q (%v), which decodes unchanged", body, err)
		}
	})
}

func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case map[string]any:
		for k, e := range x {
			fn(k)
			walkStrings(e, fn)
		}
	}
}
