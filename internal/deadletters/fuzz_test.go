package deadletters

import (
	"regexp"
	"testing"
)

var traceIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// traceID reads a header that came with a message from anyone who can
// publish: it never panics and gives a valid trace id or nothing.
func FuzzTraceID(f *testing.F) {
	for _, s := range []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "-", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "00-xyz-1-1", "00-4bf92f3577b34da6a3ce929d0e0e4736"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := traceID(s); got != "" && !traceIDRE.MatchString(got) {
			t.Fatalf("traceID(%q) = %q", s, got)
		}
	})
}

func TestTraceID(t *testing.T) {
	for in, want := range map[string]string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": "4bf92f3577b34da6a3ce929d0e0e4736",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": "", // the invalid all-zero id
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01": "", // upper case is not W3C
		"garbage": "",
	} {
		if got := traceID(in); got != want {
			t.Errorf("traceID(%q) = %q, want %q", in, got, want)
		}
	}
}
