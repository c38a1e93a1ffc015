package jsonduration

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    time.Duration
		wantErr string
	}{
		{raw: "", want: 7}, // absent: unchanged
		{raw: `"250ms"`, want: 250 * time.Millisecond},
		{raw: `1500000000`, want: 1500 * time.Millisecond},
		{raw: `"0s"`, want: 0},
		{raw: `"soon"`, want: 7, wantErr: `invalid duration "soon"`},
		{raw: `1.5`, want: 7, wantErr: "want a duration string or nanoseconds, got 1.5"},
		{raw: `true`, want: 7, wantErr: "want a duration string or nanoseconds, got true"},
	} {
		d := time.Duration(7)
		err := Parse([]byte(tc.raw), &d)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Parse(%s): error %v, want %q", tc.raw, err, tc.wantErr)
		}
		if d != tc.want {
			t.Errorf("Parse(%s) = %v, want %v", tc.raw, d, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	if s := Format(0); s != "" {
		t.Errorf("Format(0) = %q, want empty", s)
	}
	if s := Format(90 * time.Second); s != "1m30s" {
		t.Errorf("Format(90s) = %q", s)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`"1s"`, `12`, `"-3h"`, `null`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d time.Duration
		if err := Parse(raw, &d); err == nil && len(raw) > 0 {
			// What parsed must survive its own formatting.
			var back time.Duration
			if err := Parse([]byte(`"`+Format(d)+`"`), &back); d != 0 && (err != nil || back != d) {
				t.Fatalf("%s -> %v -> %q -> %v, %v", raw, d, Format(d), back, err)
			}
		}
	})
}
