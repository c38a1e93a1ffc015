package scimfilter

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{`userName eq "bjensen"`, `userName eq "bjensen"`},
		{`USERNAME EQ "bjensen"`, `USERNAME eq "bjensen"`},
		{`name.familyName co "O'Malley"`, `name.familyName co "O'Malley"`},
		{`userName sw "J"`, `userName sw "J"`},
		{`title pr`, `title pr`},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, `meta.lastModified gt "2011-05-13T04:42:34Z"`},
		{`count ge 10.5`, `count ge 10.5`},
		{`x le -3e2`, `x le -3e2`},
		{`active eq true and userName ne null`, `active eq true and userName ne null`},
		{`title pr and userType eq "Employee"`, `title pr and userType eq "Employee"`},
		{`title pr or userType eq "Intern"`, `title pr or userType eq "Intern"`},
		{`a eq 1 or b eq 2 and c eq 3`, `a eq 1 or b eq 2 and c eq 3`},
		{`(a eq 1 or b eq 2) and c eq 3`, `(a eq 1 or b eq 2) and c eq 3`},
		{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
			`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`},
		{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
			`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`},
		{`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
			`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`},
		{`members[value eq "abc"]`, `members[value eq "abc"]`},
		{`urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User:isFederatedUser eq false`,
			`urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User:isFederatedUser eq false`},
		{`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "x"`,
			`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "x"`},
		{`displayName eq "a \"quoted\" \\ name"`, `displayName eq "a \"quoted\" \\ name"`},
		{`displayName eq "\u00e9t\u00e9"`, `displayName eq "été"`},
		{`not (not (a pr))`, `not (not (a pr))`},
		{`  ( ( a pr ) )  `, `a pr`},
		{"a\teq\n\"x\"", `a eq "x"`},
		{`not pr`, `not pr`},         // an attribute called "not"
		{`and eq "x"`, `and eq "x"`}, // and one called "and"
		{`$ref eq "x"`, `$ref eq "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := f.String(); got != tt.want {
				t.Fatalf("String() = %s, want %s", got, tt.want)
			}
			g, err := Parse(f.String())
			if err != nil {
				t.Fatalf("reparse %q: %v", f.String(), err)
			}
			if g.String() != f.String() {
				t.Fatalf("round trip %q -> %q", f.String(), g.String())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{``, "empty filter"},
		{`   `, "empty filter"},
		{`userName`, "expected an operator"},
		{`userName xx "a"`, "expected an operator"},
		{`userName eq`, "expected a value"},
		{`userName eq bjensen`, "expected a value"},
		{`userName eq "unterminated`, "unterminated string"},
		{`userName eq "bad \q escape"`, "malformed string"},
		{`a eq 01`, "malformed number"},
		{`a eq 1.`, "malformed number"},
		{`a eq 1e`, "malformed number"},
		{`a eq 12abc`, "malformed number"},
		{`a co 1`, "needs a string value"},
		{`a sw true`, "needs a string value"},
		{`a gt true`, "cannot compare"},
		{`a lt null`, "cannot compare"},
		{`(a pr`, `expected ")"`},
		{`a pr)`, "unexpected"},
		{`a pr and`, "found end of filter"},
		{`a pr or or b pr`, "expected an operator"},
		{`not a pr`, "expected an operator"},
		{`emails[type eq "work"`, `expected "]"`},
		{`emails[type eq "work" and x[y pr]]`, "cannot be nested"},
		{`emails.value[type pr]`, "not to"},
		{`emails[type eq "work"].value eq "x"`, "unexpected character"},
		{`a eq "x" # comment`, "unexpected character"},
		{`1a eq "x"`, "malformed number"},
		{`) eq "x"`, "expected an attribute expression"},
		{`a.b.c eq "x"`, "invalid sub-attribute"},
		{`urn:x eq "y"`, "invalid schema URN"},
		{`urn:ietf:params:: eq "y"`, "invalid"},
		{`a- eq "x"`, ""},
		{strings.Repeat("(", MaxDepth+1) + "a pr" + strings.Repeat(")", MaxDepth+1), "deeper than"},
		{strings.Repeat("not (", MaxDepth+1) + "a pr" + strings.Repeat(")", MaxDepth+1), "deeper than"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if tt.in == `a- eq "x"` { // "a-" is a valid ATTRNAME
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%q) error = %v, want *Error", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Parse(%q) error = %q, want it to contain %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestParseNestingLimitAccepted(t *testing.T) {
	in := strings.Repeat("(", MaxDepth) + "a pr" + strings.Repeat(")", MaxDepth)
	if _, err := Parse(in); err != nil {
		t.Fatalf("Parse at MaxDepth: %v", err)
	}
}

type testUser struct{ m Map }

func (u testUser) Attr(name string) any {
	switch name {
	case "id":
		return CaseExact("2819c223-7f76-453a-919d-413861904646")
	case "urn:ietf:params:scim:schemas:core:2.0:user":
		return u
	case "meta":
		return Map{"created": time.Date(2011, 8, 1, 18, 29, 49, 0, time.UTC), "resourcetype": "User"}
	case "groups":
		return multi{Map{"value": CaseExact("G1"), "display": "Admins"}, Map{"value": CaseExact("g2"), "display": "Tour Guides"}}
	}
	return u.m.Attr(name)
}

type multi []any

func (m multi) Len() int       { return len(m) }
func (m multi) At(i int) any   { return m[i] }
func (m multi) String() string { return "multi" }

var bjensen = testUser{Map{
	"userName":    "bjensen",
	"displayName": "Babs Jensen",
	"title":       "",
	"userType":    "Employee",
	"active":      true,
	"logins":      42,
	"score":       2.5,
	"name":        map[string]any{"familyName": "Jensen", "givenName": "Barbara"},
	"emails": []any{
		map[string]any{"value": "bjensen@example.com", "type": "work", "primary": true},
		map[string]any{"value": "babs@jensen.org", "type": "home"},
	},
	"nickNames": []string{"Babs", "BJ"},
	"urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User": map[string]any{"isFederatedUser": false},
}}

func TestMatch(t *testing.T) {
	tests := []struct {
		filter string
		want   bool
	}{
		{`userName eq "bjensen"`, true},
		{`userName eq "BJENSEN"`, true}, // caseExact=false
		{`UserName Eq "bjensen"`, true},
		{`userName ne "bjensen"`, false},
		{`userName ne "other"`, true},
		{`userName co "jen"`, true},
		{`userName co "JEN"`, true},
		{`userName co "xyz"`, false},
		{`userName sw "bj"`, true},
		{`userName sw "je"`, false},
		{`userName ew "sen"`, true},
		{`userName ew "bj"`, false},
		{`userName gt "a"`, true},
		{`userName gt "c"`, false},
		{`userName ge "bjensen"`, true},
		{`userName lt "c"`, true},
		{`userName le "BJENSEN"`, true},
		{`userName lt "b"`, false},
		{`id eq "2819c223-7f76-453a-919d-413861904646"`, true},
		{`id eq "2819C223-7F76-453A-919D-413861904646"`, false}, // CaseExact
		{`id sw "2819c"`, true},
		{`title pr`, false}, // empty string is not a value
		{`nickName pr`, false},
		{`displayName pr`, true},
		{`emails pr`, true},
		{`name.givenName pr`, true},
		{`name.middleName pr`, false},
		{`active eq true`, true},
		{`active eq false`, false},
		{`active ne false`, true},
		{`active eq "true"`, false}, // no coercion
		{`logins eq 42`, true},
		{`logins gt 41.5`, true},
		{`logins lt 42`, false},
		{`score ge 2.5`, true},
		{`score le 2`, false},
		{`name.familyName eq "jensen"`, true},
		{`name.familyName co "ens"`, true},
		{`emails co "example.com"`, true}, // implicit .value
		{`emails.value ew "@jensen.org"`, true},
		{`emails.type eq "other"`, false},
		{`emails.value ne "babs@jensen.org"`, false}, // ne on multi-valued: no value is equal
		{`emails.value ne "nobody@x"`, true},
		{`emails[type eq "work" and value co "@example.com"]`, true},
		{`emails[type eq "home" and value co "@example.com"]`, false},
		{`emails[type eq "home" or primary eq true]`, true},
		{`emails[not (type eq "work")]`, true},
		{`emails[primary pr]`, true},
		{`nickNames eq "bj"`, true},
		{`nickNames sw "ba"`, true},
		{`groups[value eq "G1"]`, true},
		{`groups[value eq "g1"]`, false}, // CaseExact member ids
		{`groups.value eq "g2"`, true},
		{`groups.display co "guide"`, true},
		{`missing eq "x"`, false},
		{`missing ne "x"`, true},
		{`missing eq null`, true},
		{`missing ne null`, false},
		{`userName eq null`, false},
		{`userName ne null`, true},
		{`missing pr`, false},
		{`missing[value eq "x"]`, false},
		{`missing.sub eq "x"`, false},
		{`userName.sub eq "x"`, false},
		{`meta.created gt "2011-01-01T00:00:00Z"`, true},
		{`meta.created lt "2011-08-01T18:29:49.001Z"`, true},
		{`meta.created eq "2011-08-01T20:29:49+02:00"`, true},
		{`meta.resourceType eq "user"`, true},
		{`urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User:isFederatedUser eq false`, true},
		{`URN:IETF:PARAMS:SCIM:SCHEMAS:ORACLE:IDCS:EXTENSION:USER:USER:ISFEDERATEDUSER eq false`, true},
		{`urn:ietf:params:scim:schemas:oracle:idcs:extension:capabilities:User:canUseApiKeys eq true`, false},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw "bar"`, true},
		{`userName eq "bjensen" and active eq true`, true},
		{`userName eq "bjensen" and active eq false`, false},
		{`userName eq "x" or active eq true`, true},
		{`userName eq "x" or active eq false`, false},
		{`not (userName eq "x")`, true},
		{`not (userName eq "bjensen")`, false},
		{`(userName eq "x" or userName eq "bjensen") and not (active eq false)`, true},
		{`userName eq "x" or userName eq "y" and active eq true`, false},
		{`userName eq "bjensen" or userName eq "y" and active eq false`, true}, // and binds tighter
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := Parse(tt.filter)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := f.Match(bjensen)
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchErrors(t *testing.T) {
	for _, in := range []string{
		`active gt "a"`,
		`active le 1`,
		`meta.created gt "yesterday"`,
		`meta.created co "2011"`,
		`userName eq "x" or active lt 3`,
	} {
		t.Run(in, func(t *testing.T) {
			f, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			_, err = f.Match(bjensen)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Match error = %v, want *Error", err)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in               string
		urn, name, sub   string
		filter, valueSub string
		wantErr          bool
	}{
		{in: "displayName", name: "displayName"},
		{in: " active ", name: "active"},
		{in: "name.givenName", name: "name", sub: "givenName"},
		{in: "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group:description",
			urn: "urn:ietf:params:scim:schemas:oracle:idcs:extension:group:Group", name: "description"},
		{in: `members[value eq "2819c223"]`, name: "members", filter: `value eq "2819c223"`},
		{in: `members[value eq "a]b"]`, name: "members", filter: `value eq "a]b"`},
		{in: `emails[type eq "work"].value`, name: "emails", filter: `type eq "work"`, valueSub: "value"},
		{in: `emails[type eq "work" and primary eq true].display`, name: "emails", filter: `type eq "work" and primary eq true`, valueSub: "display"},
		{in: "", wantErr: true},
		{in: "1abc", wantErr: true},
		{in: `members[value eq "x"`, wantErr: true},
		{in: `members[value eq]`, wantErr: true},
		{in: `members[value eq "x"]value`, wantErr: true},
		{in: `members[value eq "x"].`, wantErr: true},
		{in: `members.value[value eq "x"]`, wantErr: true},
		{in: `members[value eq "x"] extra`, wantErr: true},
		{in: `members[x[y pr]]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePath(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParsePath(%q) = %+v, want error", tt.in, p)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePath: %v", err)
			}
			if p.Attr.URN != tt.urn || p.Attr.Name != tt.name || p.Attr.Sub != tt.sub || p.Sub != tt.valueSub {
				t.Fatalf("ParsePath = %+v", p)
			}
			got := ""
			if p.Filter != nil {
				got = p.Filter.String()
			}
			if got != tt.filter {
				t.Fatalf("filter = %q, want %q", got, tt.filter)
			}
			if _, err := ParsePath(p.String()); err != nil {
				t.Fatalf("reparse %q: %v", p.String(), err)
			}
		})
	}
}

func TestMapAttr(t *testing.T) {
	m := Map{"userName": "x"}
	if m.Attr("username") != "x" || m.Attr("USERNAME") != "x" || m.Attr("other") != nil {
		t.Fatal("Map.Attr is not case-insensitive")
	}
}

func TestValuesAndCompareValues(t *testing.T) {
	got := Values(NewAttrPath("", "emails", "type"), bjensen)
	if len(got) != 2 || got[0] != "work" || got[1] != "home" {
		t.Errorf("Values(emails.type) = %v", got)
	}
	if got := Values(NewAttrPath("", "emails", ""), bjensen); len(got) != 2 || got[0] != "bjensen@example.com" {
		t.Errorf("Values(emails) = %v, want the value sub-attribute", got)
	}
	tm := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		a, b any
		want int
	}{
		{"abc", "ABD", -1},
		{CaseExact("abc"), CaseExact("ABC"), 1},
		{1.0, 2, -1},
		{int64(3), 3.0, 0},
		{false, true, -1},
		{true, true, 0},
		{tm, tm.Add(time.Second), -1},
		{"a", 1.0, -1},
		{1.0, nil, -1},
	}
	for _, tt := range tests {
		if got := CompareValues(tt.a, tt.b); (got < 0) != (tt.want < 0) || (got > 0) != (tt.want > 0) {
			t.Errorf("CompareValues(%v, %v) = %d, want sign of %d", tt.a, tt.b, got, tt.want)
		}
	}
}
