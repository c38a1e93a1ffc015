package scimfilter

import (
	"testing"
)

// FuzzParse checks that Parse never panics, that whatever it accepts renders
// to text that parses back to the same canonical form, and that evaluating an
// accepted filter never panics. Crashers found by `go test -fuzz` are kept in
// testdata/fuzz/FuzzParse and replayed by plain `go test`.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen"`,
		`name.familyName co "O'Malley"`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`title pr and userType eq "Employee"`,
		`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
		`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
		`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
		`members[value eq "abc"]`,
		`urn:ietf:params:scim:schemas:oracle:idcs:extension:user:User:isFederatedUser eq false`,
		`logins ge -1.5e3`,
		`a eq null`,
		`displayName eq "\u00e9\"\\"`,
		`((a pr))`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := Parse(s)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse(%q) error %T, want *Error", s, err)
			}
			_, _ = ParsePath(s)
			return
		}
		canon := flt.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok but its rendering %q does not parse: %v", s, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("rendering not stable: %q -> %q -> %q", s, canon, again.String())
		}
		_, _ = flt.Match(bjensen)
		_, _ = flt.Match(Map{})
		if c, ok := flt.Expr().(*Compare); ok {
			for _, v := range Values(c.Path, bjensen) {
				_ = CompareValues(v, c.Value)
			}
		}
		if p, err := ParsePath(s); err == nil {
			if _, err := ParsePath(p.String()); err != nil {
				t.Fatalf("path %q renders as %q, which does not parse: %v", s, p.String(), err)
			}
		}
	})
}
