package token

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		body string
		ttl  time.Duration
		err  string
	}{
		{body: `{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}`, ttl: time.Hour},
		{body: `{"access_token":"tok-1"}`},
		{body: `{"token_type":"Bearer"}`, err: "the token endpoint's answer has no access_token"},
		{body: `<html>`, err: "the token endpoint's answer has no access_token"},
		{body: `{"access_token":"tok-1","token_type":"mac"}`, err: `the token endpoint answered token_type "mac", want Bearer`},
		{body: `{"access_token":"tok-1","token_type":"` + strings.Repeat("x", 100) + `"}`,
			err: `the token endpoint answered token_type "` + strings.Repeat("x", 40) + `", want Bearer`},
	} {
		f, err := Parse([]byte(tc.body))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || strings.Contains(err.Error(), "tok-1") {
				t.Errorf("%s: error %v, want %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || f.Value.Reveal() != "tok-1" || f.TTL != tc.ttl {
			t.Errorf("%s: %q, TTL %v, %v; want tok-1, TTL %v", tc.body, f.Value.Reveal(), f.TTL, err, tc.ttl)
		}
	}
}
