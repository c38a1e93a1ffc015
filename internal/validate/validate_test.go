package validate

import (
	"errors"
	"testing"
)

func TestPrefix(t *testing.T) {
	if Prefix("x.", nil) != nil {
		t.Fatal("nil error prefixed into non-nil")
	}
	err := Prefix("nats.", errors.Join(errors.New("urls[0]: empty"), errors.New("streams.replicas: 0")))
	if got, want := err.Error(), "nats.urls[0]: empty\nnats.streams.replicas: 0"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 2 {
		t.Fatalf("%d errors, want one per line", n)
	}
}

func TestPattern(t *testing.T) {
	for _, tc := range []struct {
		p, match, miss, err string
	}{
		{p: "adm.*", match: "admins", miss: "sysadmins"},
		// Anchors wrap the whole expression: an alternative matches whole values only.
		{p: "a|b", match: "b", miss: "ab"},
		{p: "", match: "", miss: "a"},
		{p: "(", err: `"(" is not a valid pattern: missing closing )`},
		{p: "a**", err: "\"a**\" is not a valid pattern: invalid nested repetition operator: `**`"},
		// Unbalanced: wrapped as is, it would compile to ^(?:a)|(b)$.
		{p: "a)|(b", err: `"a)|(b" is not a valid pattern: unexpected )`},
	} {
		re, err := Pattern(tc.p)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Pattern(%q): %v, want %q", tc.p, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Pattern(%q): %v", tc.p, err)
			continue
		}
		if !re.MatchString(tc.match) || re.MatchString(tc.miss) {
			t.Errorf("Pattern(%q) = %s: matches %q %v, %q %v; want true, false", tc.p, re, tc.match, re.MatchString(tc.match), tc.miss, re.MatchString(tc.miss))
		}
	}
}
