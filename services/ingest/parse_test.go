package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/event"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// parseTestNow is the receive time every test passes to Parse.
var parseTestNow = time.Date(2025, 3, 20, 9, 30, 0, 0, time.UTC)

// parseHeaderLines reads `Key: value` lines (blank lines and # comments skipped).
func parseHeaderLines(text string) http.Header {
	h := http.Header{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h
}

// fixture is one testdata input: testdata/<name>.json and its optional
// testdata/<name>.headers (`Key: value` lines).
type fixture struct {
	name    string
	headers string // the .headers file's text
	body    []byte
}

// header is the fixture's headers as a request carries them.
func (f fixture) header() http.Header { return parseHeaderLines(f.headers) }

// fixtures reads every fixture, sorted by name.
func fixtures(t testing.TB) []fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no testdata/*.json fixtures")
	}
	out := make([]fixture, 0, len(paths))
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		headers, err := os.ReadFile(filepath.Join("testdata", name+".headers"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		out = append(out, fixture{name: name, headers: string(headers), body: body})
	}
	return out
}

// renderBatch is the stable, indented JSON form of a Parse result that the golden
// files hold: events as protojson (proto field names) with sorted keys.
func renderBatch(t testing.TB, b *Batch, err error) []byte {
	t.Helper()
	type renderedError struct {
		Code    string `json:"code"`
		Path    string `json:"path"`
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	var view struct {
		Error        *renderedError `json:"error,omitempty"`
		Confirmation *Confirmation  `json:"confirmation,omitempty"`
		Events       []any          `json:"events,omitempty"`
		Unknown      []Unknown      `json:"unknown,omitempty"`
	}
	if err != nil {
		var pe *parseError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not a *ParseError", err, err)
		}
		view.Error = &renderedError{Code: pe.Code, Path: pe.Path, Message: pe.Msg, Error: pe.Error()}
	} else {
		view.Confirmation = b.Confirmation
		view.Unknown = b.Unknown
		for _, ev := range b.Events {
			pj, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
			if err != nil {
				t.Fatalf("protojson: %v", err)
			}
			var v any
			if err := json.Unmarshal(pj, &v); err != nil {
				t.Fatal(err)
			}
			view.Events = append(view.Events, v)
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(view); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			b, err := Parse(f.header(), f.body, parseTestNow)
			got := renderBatch(t, b, err)
			golden := filepath.Join("testdata", f.name+".golden")
			if *updateGolden {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./services/ingest -run Golden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Parse(%s) differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", f.name, golden, got, want)
			}
			if err == nil {
				checkBatch(t, b)
			}
		})
	}
}

// checkBatch asserts what every successful result must satisfy.
func checkBatch(t testing.TB, b *Batch) {
	t.Helper()
	if b == nil {
		t.Fatal("nil batch without an error")
	}
	if b.Confirmation != nil {
		if b.Confirmation.URL == "" {
			t.Error("confirmation without a URL")
		}
		if len(b.Events)+len(b.Unknown) != 0 {
			t.Error("confirmation carries events")
		}
	}
	ids := map[string]*iamflowv1.IdentityEvent{}
	for i, ev := range b.Events {
		if ev.GetId() == "" {
			t.Errorf("event %d has no id", i)
		}
		// An id repeats only for a repeated entry (JetStream dedupes it).
		if prev := ids[ev.GetId()]; prev != nil && !proto.Equal(prev, ev) {
			t.Errorf("event %d: id %q names two different events in the batch", i, ev.GetId())
		}
		ids[ev.GetId()] = ev
		if event.KindToken(ev.GetKind()) == "" || event.ActionToken(ev.GetAction()) == "" {
			t.Errorf("event %d: kind %v / action %v invalid", i, ev.GetKind(), ev.GetAction())
		}
		if ev.GetType() != event.Type(ev.GetKind(), ev.GetAction()) {
			t.Errorf("event %d: type %q, want %q", i, ev.GetType(), event.Type(ev.GetKind(), ev.GetAction()))
		}
		if ev.GetDomain() != "" {
			t.Errorf("event %d: domain %q set; the handler sets it", i, ev.GetDomain())
		}
		if ev.GetSource() == iamflowv1.Source_SOURCE_UNSPECIFIED {
			t.Errorf("event %d: no source", i)
		}
		if !ev.GetReceivedAt().IsValid() {
			t.Errorf("event %d: received_at invalid", i)
		}
		if ev.OccurredAt != nil && !ev.GetOccurredAt().IsValid() {
			t.Errorf("event %d: occurred_at invalid", i)
		}
		withDomain := &iamflowv1.IdentityEvent{}
		*withDomain = iamflowv1.IdentityEvent{Id: ev.GetId(), Kind: ev.GetKind(), Action: ev.GetAction(), Resource: ev.GetResource(), Related: ev.GetRelated(), Domain: "test"}
		if err := event.Validate(withDomain); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
		if _, err := event.Marshal(ev); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
	}
	for i, u := range b.Unknown {
		if u.ID == "" {
			t.Errorf("unknown %d has no id", i)
		}
	}
}

func mustParse(t *testing.T, hdr http.Header, body string) *Batch {
	t.Helper()
	b, err := Parse(hdr, []byte(body), parseTestNow)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checkBatch(t, b)
	return b
}

func TestParseErrors(t *testing.T) {
	deepArrays := strings.Repeat("[", 100000)
	deepObjects := strings.Repeat(`{"a":`, 100000)
	many := "[" + strings.TrimSuffix(strings.Repeat("{},", maxBatchEntries+1), ",") + "]"
	ident := func(details string) string {
		return `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.createuser","eventID":"e1","data":{"additionalDetails":` + details + `}}`
	}
	member := func(details string) string {
		return `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.addusertogroup","eventID":"e1","data":{"additionalDetails":` + details + `}}`
	}
	confirm := http.Header{}
	confirm.Set("X-OCI-NS-MessageType", "SubscriptionConfirmation")

	tests := []struct {
		name, body string
		hdr        http.Header
		code, path string
		msg        string // the message contains this
		errText    string // if set, Error() equals this
	}{
		{name: "not JSON", body: "hello, OCI", code: codeMalformedJSON, msg: "not valid JSON"},
		{name: "truncated", body: `{"eventType": "com.oraclecloud.identitycontrolplane.createuser"`, code: codeMalformedJSON, msg: "not valid JSON"},
		{name: "trailing garbage", body: `{"eventType":"x"} {}`, code: codeMalformedJSON, msg: "not valid JSON"},
		{name: "empty body", body: "", code: codeMalformedJSON, msg: "body is empty"},
		{name: "blank body", body: " \r\n\t", code: codeMalformedJSON, msg: "body is empty"},
		{name: "JSON string", body: `"createuser"`, code: codeUnsupportedShape, msg: "body is a string, want a JSON object"},
		{name: "JSON number", body: `42`, code: codeUnsupportedShape, msg: "body is a number, want a JSON object"},
		{name: "JSON null", body: `null`, code: codeUnsupportedShape, msg: "body is null"},
		{name: "JSON boolean", body: `true`, code: codeUnsupportedShape, msg: "body is a boolean"},
		{name: "unknown object", body: `{"hello":"world"}`, code: codeUnsupportedShape, msg: "none of the keys",
			errText: "body is a JSON object with none of the keys of a known shape: want an OCI Events envelope (cloudEventsVersion, eventType), a CloudEvents 1.0 event (specversion, type), a Connector Hub log entry (logContent) or a Notifications subscription confirmation (ConfirmationURL)"},
		{name: "array of numbers", body: `[1, 2, 3]`, code: codeWrongType, path: "[0]", msg: "entry is a number, want an object",
			errText: "body[0]: entry is a number, want an object (a log entry or an event)"},
		{name: "array of unknown objects", body: `[{"datetime":1}]`, code: codeUnsupportedShape, path: "[0]", msg: "want an OCI audit log entry"},
		{name: "logContent not an object", body: `[{"logContent":"x"}]`, code: codeWrongType, path: "[0].logContent", msg: "logContent is a string, want an object"},
		{name: "logContent of unknown shape", body: `{"logContent":{"a":1}}`, code: codeUnsupportedShape, path: "logContent", msg: "logContent has none of"},
		{name: "additionalDetails a number", body: ident(`42`), code: codeWrongType, path: "data.additionalDetails",
			errText: "body.data: additionalDetails is a number, want an object"},
		{name: "additionalDetails a number in a wrapped entry", code: codeWrongType, path: "[1].logContent.data.additionalDetails",
			body:    `[{"logContent":{"specversion":"1.0","type":"com.oraclecloud.computeapi.getinstance","id":"a","data":{}}},{"logContent":{"specversion":"1.0","type":"t","id":"b","data":{"additionalDetails":7}}}]`,
			errText: "body[1].logContent.data: additionalDetails is a number, want an object"},
		{name: "additionalDetails an array", body: ident(`[]`), code: codeWrongType, path: "data.additionalDetails", msg: "additionalDetails is an array, want an object"},
		{name: "eventType a number", body: `{"cloudEventsVersion":"0.1","eventType":7,"eventID":"e1","data":{}}`, code: codeWrongType, path: "eventType",
			errText: "body: eventType is a number, want a string"},
		{name: "type an object", body: `{"specversion":"1.0","type":{"x":1},"id":"e1"}`, code: codeWrongType, path: "type", msg: "type is an object, want a string"},
		{name: "eventID a number", body: `{"cloudEventsVersion":"0.1","eventType":"x","eventID":12,"data":{}}`, code: codeWrongType, path: "eventID", msg: "eventID is a number"},
		{name: "data a string", body: `{"cloudEventsVersion":"0.1","eventType":"x","eventID":"e","data":"{}"}`, code: codeWrongType, path: "data", msg: "data is a string, want an object"},
		{name: "eventId a boolean", body: ident(`{"eventId":true}`), code: codeWrongType, path: "data.additionalDetails.eventId", msg: "eventId is a boolean, want a string"},
		{name: "no type at all", body: `{"cloudEventsVersion":"0.1","eventID":"e","data":{"additionalDetails":{}}}`, code: codeMissingField, path: "eventType", msg: "eventType is missing"},
		{name: "identity event with no resource", body: ident(`{"actorName":"admin","domainName":"Default"}`), code: codeMissingField,
			path: "data.additionalDetails.adminResourceId", msg: "user.created event must name its user"},
		{name: "identity event with no data", body: `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.deletegroup","eventID":"e"}`,
			code: codeMissingField, path: "data.additionalDetails.adminResourceId", msg: "group.deleted event must name its group"},
		{name: "adminResourceId a number", body: ident(`{"adminResourceId":1234}`), code: codeWrongType, path: "data.additionalDetails.adminResourceId",
			errText: "body.data.additionalDetails: adminResourceId is a number, want a string"},
		{name: "adminValuesAdded a number", body: ident(`{"adminResourceId":"u1","adminValuesAdded":5}`), code: codeWrongType,
			path: "data.additionalDetails.adminValuesAdded", msg: "adminValuesAdded is a number, want an object or a JSON-encoded string"},
		{name: "identity a string", body: `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.createuser","eventID":"e1","data":{"identity":"x","additionalDetails":{"adminResourceId":"u1"}}}`,
			code: codeWrongType, path: "data.identity", msg: "identity is a string, want an object"},
		{name: "membership with no user", body: member(`{"adminResourceId":"g1","adminResourceName":"admins"}`), code: codeMissingField,
			path: "data.additionalDetails.adminRefResourceId", msg: "must name its user"},
		{name: "membership with no group", body: member(`{"adminRefResourceId":"u1"}`), code: codeMissingField,
			path: "data.additionalDetails.adminResourceId", msg: "must name its group"},
		{name: "members not an array", code: codeWrongType, path: "data.additionalDetails.adminValuesAdded.members", msg: "members is a string, want an array",
			body: `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.updategroup","eventID":"e","data":{"additionalDetails":{"adminResourceId":"g","adminValuesAdded":{"members":"u1"}}}}`},
		{name: "member a number", code: codeWrongType, path: "data.additionalDetails.adminValuesRemoved.members[1]", msg: "members[1] is a number",
			body: `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.updategroup","eventID":"e","data":{"additionalDetails":{"adminResourceId":"g","adminValuesRemoved":{"members":[{"value":"u1"},3]}}}}`},
		{name: "member naming no user", code: codeMissingField, path: "data.additionalDetails.adminValuesAdded.members[0]", msg: "members[0] names no user",
			errText: "body.data.additionalDetails.adminValuesAdded: members[0] names no user: want value, ocid, display or name",
			body:    `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.updategroup","eventID":"e","data":{"additionalDetails":{"adminResourceId":"g","adminValuesAdded":{"members":[{"type":"User"}]}}}}`},
		{name: "member value a number inside a JSON string", code: codeWrongType, path: "data.additionalDetails.adminValuesAdded.members[0].value", msg: "value is a number",
			body: `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.updategroup","eventID":"e","data":{"additionalDetails":{"adminResourceId":"g","adminValuesAdded":"{\"members\":[{\"value\":1}]}"}}}`},
		{name: "id with a control character", body: `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.deleteuser","eventID":"e\r\nNats-Msg-Id: x","data":{"additionalDetails":{"adminResourceId":"u1"}}}`,
			code: codeWrongType, path: "eventID", msg: "control character"},
		{name: "one bad identity entry rejects the batch", code: codeMissingField, path: "[2].data.additionalDetails.adminResourceId",
			body: `[` + ident(`{"adminResourceId":"u1"}`) + `,` + strings.Replace(ident(`{"adminResourceId":"u2"}`), `"e1"`, `"e2"`, 1) + `,` + strings.Replace(ident(`{}`), `"e1"`, `"e3"`, 1) + `]`,
			msg:  "adminResourceId is missing"},
		{name: "too many entries", body: many, code: codeTooManyEvents, msg: "10001 entries, more than the limit of 10000"},
		{name: "deeply nested arrays", body: deepArrays, code: codeMalformedJSON, msg: "nested too deeply"},
		{name: "deeply nested objects", body: deepObjects, code: codeMalformedJSON, msg: "nested too deeply"},
		{name: "deeply nested in an entry", body: `[` + deepArrays, code: codeMalformedJSON, msg: "nested too deeply"},
		{name: "confirmation without a URL", hdr: confirm, body: `{"Message":"confirm me"}`, code: codeMissingField, path: "ConfirmationURL",
			msg: "ConfirmationURL is missing"},
		{name: "confirmation with an empty body", hdr: confirm, body: ``, code: codeMissingField, path: "ConfirmationURL", msg: "ConfirmationURL is missing"},
		{name: "confirmation URL a number", hdr: confirm, body: `{"ConfirmationURL":1}`, code: codeWrongType, path: "ConfirmationURL",
			errText: "body: ConfirmationURL is a number, want a string"},
		{name: "confirmation body not JSON", hdr: confirm, body: `ConfirmationURL=https://x`, code: codeMalformedJSON, msg: "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := tc.hdr
			if hdr == nil {
				hdr = http.Header{}
			}
			b, err := Parse(hdr, []byte(tc.body), parseTestNow)
			if err == nil {
				t.Fatalf("Parse succeeded with %d events, %d unknown; want %s", len(b.Events), len(b.Unknown), tc.code)
			}
			if b != nil {
				t.Errorf("Parse returned a batch with the error")
			}
			var pe *parseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is a %T, want *ParseError", err, err)
			}
			if pe.Code != tc.code {
				t.Errorf("code %q, want %q (%v)", pe.Code, tc.code, err)
			}
			if tc.path != "" || tc.code == codeMalformedJSON {
				if pe.Path != tc.path {
					t.Errorf("path %q, want %q (%v)", pe.Path, tc.path, err)
				}
			}
			if tc.msg != "" && !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("message %q does not say %q", pe.Msg, tc.msg)
			}
			if tc.errText != "" && err.Error() != tc.errText {
				t.Errorf("Error()\n got %q\nwant %q", err.Error(), tc.errText)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("message is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestParseErrorText(t *testing.T) {
	for _, tc := range []struct{ path, msg, want string }{
		{"[3].logContent.data.additionalDetails", "additionalDetails is a number, want an object", "body[3].logContent.data: additionalDetails is a number, want an object"},
		{"[3]", "entry is a number, want an object", "body[3]: entry is a number, want an object"},
		{"", "body is empty", "body is empty"},
		{"", "ConfirmationURL is missing", "body: ConfirmationURL is missing"},
		{"eventType", "eventType is a number, want a string", "body: eventType is a number, want a string"},
		{"data.eventType", "eventType is a number, want a string", "body.data: eventType is a number, want a string"},
		{"data.eventType", "something else", "body.data.eventType: something else"},
		{"[0].data.additionalDetails.adminValuesAdded.members[2]", "members[2] is a number", "body[0].data.additionalDetails.adminValuesAdded: members[2] is a number"},
	} {
		if got := (&parseError{Code: codeWrongType, Path: tc.path, Msg: tc.msg}).Error(); got != tc.want {
			t.Errorf("Error() of %q / %q\n got %q\nwant %q", tc.path, tc.msg, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	const p = "com.oraclecloud.identitycontrolplane."
	for _, tc := range []struct {
		eventType, auditID, eventName string
		want                          string // canonical type, or "?<unknown type>"
	}{
		{p + "createuser", "", "", "user.created"},
		{p + "createfederateduser", "", "", "user.created"},
		{p + "updateuser", "", "", "user.updated"},
		{p + "updateuserstate", "", "", "user.updated"},
		{p + "updatemyrecoveryemail", "", "", "user.updated"},
		{p + "deleteuser", "", "", "user.deleted"},
		{p + "activateuser", "", "", "user.activated"},
		{p + "deactivateuser", "", "", "user.deactivated"},
		{p + "updateusercapabilities", "", "", "user.capabilities_changed"},
		{p + "creategroup", "", "", "group.created"},
		{p + "updategroup", "", "", "group.updated"},
		{p + "deletegroup", "", "", "group.deleted"},
		{p + "addusertogroup", "", "", "membership.member_added"},
		{p + "removeuserfromgroup", "", "", "membership.member_removed"},
		{"com.oraclecloud.identityControlPlane.AddUserToGroup", "", "", "membership.member_added"},
		{"COM.ORACLECLOUD.IDENTITYCONTROLPLANE.DELETEUSER", "", "", "user.deleted"},
		{"", "admin.user.create.success", "", "user.created"},
		{"", "admin.user.update.success", "", "user.updated"},
		{"", "admin.user.delete.success", "", "user.deleted"},
		{"", "admin.user.activated.success", "", "user.activated"},
		{"", "admin.user.deactivated.success", "", "user.deactivated"},
		{"", "admin.group.create.success", "", "group.created"},
		{"", "admin.group.update.success", "", "group.updated"},
		{"", "admin.group.delete.success", "", "group.deleted"},
		{"", "admin.group.add.member.success", "", "membership.member_added"},
		{"", "Admin.Group.Remove.Member.Success", "", "membership.member_removed"},
		// The eventId is preferred ...
		{p + "updateuser", "admin.user.deactivated.success", "", "user.deactivated"},
		{p + "updategroup", "admin.group.add.member.success", "", "membership.member_added"},
		// ... unless it is a generic update and the type is more specific.
		{p + "updateusercapabilities", "admin.user.update.success", "", "user.capabilities_changed"},
		{p + "addusertogroup", "admin.group.update.success", "", "membership.member_added"},
		// An eventId iamflow does not map leaves the type to decide.
		{p + "updateuser", "admin.user.password.reset.success", "", "user.updated"},
		// Failures never are changes.
		{p + "createuser", "admin.user.create.failure", "", "?admin.user.create.failure"},
		{"", "sso.authentication.failure", "", "?sso.authentication.failure"},
		// Audit records naming the operation only in data.eventName.
		{"", "", "AddUserToGroup", "membership.member_added"},
		{"com.oraclecloud.identityControlPlane.Api", "", "RemoveUserFromGroup", "membership.member_removed"},
		{"com.oraclecloud.BlockVolumes.ListVolumes", "", "CreateUser", "?com.oraclecloud.BlockVolumes.ListVolumes"},
		// Not identity changes iamflow acts on.
		{p + "createdynamicgroup", "", "", "?" + p + "createdynamicgroup"},
		{p + "createpolicy", "", "", "?" + p + "createpolicy"},
		{p + "addusertoidpgroup", "", "", "?" + p + "addusertoidpgroup"},
		{p + "createidentityprovider", "", "", "?" + p + "createidentityprovider"},
		{"com.oraclecloud.computeapi.launchinstance", "", "", "?com.oraclecloud.computeapi.launchinstance"},
		{"com.oraclecloud.IdentitySignOn.InteractiveLogin", "sso.session.create.success", "InteractiveLogin", "?com.oraclecloud.IdentitySignOn.InteractiveLogin"},
		{"", "sso.session.create.success", "", "?sso.session.create.success"},
		{"", "", "ListVolumes", "?ListVolumes"},
		{"createuser", "", "", "?createuser"}, // the namespace is required
	} {
		c := classify(tc.eventType, tc.auditID, tc.eventName)
		got := "?" + c.unknownType
		if c.ok {
			got = event.Type(c.kind, c.action)
		}
		if got != tc.want {
			t.Errorf("classify(%q, %q, %q) = %s, want %s", tc.eventType, tc.auditID, tc.eventName, got, tc.want)
		}
	}
}

func TestDerivedIDs(t *testing.T) {
	entry := `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.deleteuser","data":{"additionalDetails":{"adminResourceId":"%s"}}}`
	a := fmt.Sprintf(entry, "u1")
	b := fmt.Sprintf(entry, "u2")
	batch := mustParse(t, nil, "["+a+","+a+","+b+"]")
	if len(batch.Events) != 3 {
		t.Fatalf("%d events, want 3", len(batch.Events))
	}
	ids := []string{batch.Events[0].GetId(), batch.Events[1].GetId(), batch.Events[2].GetId()}
	if ids[0] != ids[1] {
		t.Errorf("identical entries got ids %q and %q; they must dedupe", ids[0], ids[1])
	}
	if ids[0] == ids[2] {
		t.Errorf("different entries share id %q", ids[0])
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "sha256:") || len(id) != len("sha256:")+32 {
			t.Errorf("derived id %q, want sha256:<32 hex>", id)
		}
	}
	// The same entry delivered alone, or wrapped, gets the same id.
	single := mustParse(t, nil, a)
	wrapped := mustParse(t, nil, `[{"datetime":1,"logContent":`+a+`,"regionId":"us-ashburn-1"}]`)
	if single.Events[0].GetId() != ids[0] || wrapped.Events[0].GetId() != ids[0] {
		t.Errorf("ids differ by delivery: %q, %q, %q", ids[0], single.Events[0].GetId(), wrapped.Events[0].GetId())
	}
	if single.Events[0].GetSource() != iamflowv1.Source_SOURCE_OCI_EVENTS || wrapped.Events[0].GetSource() != iamflowv1.Source_SOURCE_CONNECTOR_HUB {
		t.Errorf("sources %v, %v", single.Events[0].GetSource(), wrapped.Events[0].GetSource())
	}
}

func TestParseLenient(t *testing.T) {
	t.Run("non-identity entries are not held to identity field types", func(t *testing.T) {
		b := mustParse(t, nil, `[{"specversion":"1.0","type":"com.oraclecloud.computeapi.launchinstance","id":"x","time":17,"data":{"resourceId":5,"identity":"someone","additionalDetails":{"actorName":7,"adminValuesAdded":3}}}]`)
		if len(b.Unknown) != 1 || b.Unknown[0].ID != "x" || len(b.Events) != 0 {
			t.Errorf("got %+v", b)
		}
	})
	t.Run("BOM and whitespace", func(t *testing.T) {
		b := mustParse(t, nil, "\xef\xbb\xbf \n"+`{"eventType":"com.oraclecloud.computeapi.launchinstance","eventID":"x"}`+"\n")
		if len(b.Unknown) != 1 {
			t.Errorf("got %+v", b)
		}
	})
	t.Run("empty batch", func(t *testing.T) {
		b := mustParse(t, nil, `[]`)
		if len(b.Events)+len(b.Unknown) != 0 || b.Confirmation != nil {
			t.Errorf("got %+v", b)
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		body := "[" + strings.TrimSuffix(strings.Repeat(`{"eventType":"com.oraclecloud.computeapi.getinstance","eventID":"x"},`, maxBatchEntries), ",") + "]"
		b := mustParse(t, nil, body)
		if len(b.Unknown) != maxBatchEntries {
			t.Errorf("%d unknown, want %d", len(b.Unknown), maxBatchEntries)
		}
	})
	t.Run("unparsable and out-of-range times are left unset", func(t *testing.T) {
		for _, tm := range []string{`"yesterday"`, `1742461200000`, `"0001-01-01T00:00:00+01:00"`, `"2025-13-01T00:00:00Z"`} {
			b := mustParse(t, nil, `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.deleteuser","eventID":"e","eventTime":`+tm+`,"data":{"additionalDetails":{"adminResourceId":"u"}}}`)
			if b.Events[0].OccurredAt != nil {
				t.Errorf("eventTime %s gave occurred_at %v", tm, b.Events[0].GetOccurredAt().AsTime())
			}
		}
		b := mustParse(t, nil, `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.deleteuser","eventID":"e","eventTime":"2019-04-19T21:26:00.310+0000","data":{"additionalDetails":{"adminResourceId":"u"}}}`)
		if got := b.Events[0].GetOccurredAt().AsTime(); !got.Equal(time.Date(2019, 4, 19, 21, 26, 0, 310e6, time.UTC)) {
			t.Errorf("occurred_at %v", got)
		}
	})
	t.Run("deep nesting inside a JSON-string adminValuesAdded is not fatal", func(t *testing.T) {
		deep, _ := json.Marshal(strings.Repeat("[", 20000))
		b := mustParse(t, nil, `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.updateuser","eventID":"e","data":{"additionalDetails":{"adminResourceId":"u","adminValuesAdded":`+string(deep)+`}}}`)
		if len(b.Events) != 1 || len(b.Events[0].GetChangedAttributes()) != 0 {
			t.Errorf("got %v", b.Events)
		}
	})
	t.Run("invalid UTF-8 is refused, not replaced", func(t *testing.T) {
		_, err := Parse(nil, []byte("{\"cloudEventsVersion\":\"0.1\",\"eventType\":\"com.oraclecloud.identitycontrolplane.deleteuser\",\"eventID\":\"e\",\"data\":{\"additionalDetails\":{\"adminResourceName\":\"j\xffe\"}}}"), parseTestNow)
		var pe *parseError
		if !errors.As(err, &pe) || pe.Code != codeMalformedJSON || !strings.Contains(pe.Error(), "not valid UTF-8 (at byte 155)") {
			t.Errorf("got %v, want malformed_json naming the byte", err)
		}
	})
	t.Run("confirmation from the body alone", func(t *testing.T) {
		b := mustParse(t, nil, `{"ConfirmationURL":"https://notification.us-phoenix-1.oraclecloud.com/20181201/subscriptions/s/confirmation?token=t"}`)
		if b.Confirmation == nil || !strings.HasPrefix(b.Confirmation.URL, "https://notification.") {
			t.Errorf("got %+v", b)
		}
	})
	t.Run("confirmation header with a body that is not JSON", func(t *testing.T) {
		h := http.Header{}
		h.Set("X-OCI-NS-MessageType", "subscriptionconfirmation")
		h.Set("X-OCI-NS-ConfirmationURL", "https://notification.example/confirm")
		b := mustParse(t, h, "Please confirm")
		if b.Confirmation == nil || b.Confirmation.URL != "https://notification.example/confirm" {
			t.Errorf("got %+v", b)
		}
	})
	t.Run("membership members fallback", func(t *testing.T) {
		b := mustParse(t, nil, `{"cloudEventsVersion":"0.1","eventType":"com.oraclecloud.identitycontrolplane.removeuserfromgroup","eventID":"e","data":{"additionalDetails":{"adminResourceId":"g","adminValuesRemoved":{"members":[{"value":"u1"},{"value":"u2"},{"value":"u1"}]}}}}`)
		if len(b.Events) != 2 || b.Events[0].GetId() != "e/member_removed/u1" || b.Events[1].GetRelated().GetId() != "u2" {
			t.Errorf("got %v", b.Events)
		}
	})
}

// BenchmarkParse measures one Events envelope (a Notifications delivery) and
// a 100-entry Connector Hub batch.
func BenchmarkParse(b *testing.B) {
	single, err := os.ReadFile(filepath.Join("testdata", "events_createuser.json"))
	if err != nil {
		b.Fatal(err)
	}
	mixed, err := os.ReadFile(filepath.Join("testdata", "connectorhub_mixed.json"))
	if err != nil {
		b.Fatal(err)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(mixed, &entries); err != nil {
		b.Fatal(err)
	}
	var batch []json.RawMessage
	for i := 0; len(batch) < 100; i++ {
		e := entries[i%len(entries)]
		// Distinct ids, as in a real batch.
		e = bytes.Replace(e, []byte(`-`), []byte(fmt.Sprintf("-%d", i)), 1)
		batch = append(batch, e)
	}
	hundred, err := json.Marshal(batch)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		body []byte
	}{{"events_envelope", single}, {"connectorhub_100", hundred}} {
		b.Run(bc.name, func(b *testing.B) {
			hdr := http.Header{}
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(hdr, bc.body, parseTestNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMembersSpeltTwice checks that a group update whose values name
// members under two spellings reads the same one every time: the one
// spelt exactly, else the first in sorted order.
func TestMembersSpeltTwice(t *testing.T) {
	body := func(values string) []byte {
		return []byte(`{"specversion":"1.0","id":"e1","type":"com.oraclecloud.identityControlPlane.UpdateGroup",` +
			`"data":{"additionalDetails":{"adminResourceId":"g","adminValuesAdded":` + values + `}}}`)
	}
	for _, tc := range []struct{ values, want string }{
		{`{"Members":[{"value":"a"}],"members":[{"value":"b"}],"MEMBERS":[{"value":"c"}]}`, "b"},
		{`{"mEmbers":[{"value":"a"}],"MEMBERS":[{"value":"c"}]}`, "c"},
	} {
		for range 20 {
			b, err := Parse(nil, body(tc.values), parseTestNow)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Events) != 1 || b.Events[0].GetRelated().GetId() != tc.want {
				t.Fatalf("%s: events %v, want one membership of %s", tc.values, b.Events, tc.want)
			}
		}
	}
}
