package secret

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckStrength(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string // "" accepts
	}{
		{[]string{"x"}, "admin.token: too weak: 1 character; use at least 16"},
		{[]string{"hunter2hunter2!"}, "admin.token: too weak: 15 characters"},
		{[]string{"aaaaaaaaaaaaaaaaaaaaaaaa"}, "admin.token: too weak: only 1 character different"},
		{[]string{"abcabcabcabcabcabcabc"}, "only 3 characters different"},
		{[]string{"correct horse battery staple"}, ""},
		{[]string{"0123456789abcdef"}, ""},                 // openssl rand -hex 8
		{[]string{"Q2hhbmdlIG1lIHBsZWFzZSwgbm93IQ=="}, ""}, // openssl rand -base64 ...
		{[]string{"correct horse battery staple", "pw"}, "admin.token[1]: too weak: 2 characters"},
		{[]string{"pw", "correct horse battery staple"}, "admin.token[0]: too weak"},
		{nil, ""},
	} {
		vs := make([]Value, len(tc.values))
		for i, v := range tc.values {
			vs[i] = NewValue(v)
		}
		err := CheckStrength("admin.token", vs...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v, want accepted", tc.values, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want an error containing %q", tc.values, err, tc.want)
		case err != nil && (!errors.Is(err, ErrWeak) || !strings.Contains(err.Error(), "openssl rand")):
			t.Errorf("%q: %v: want ErrWeak and how to generate one", tc.values, err)
		}
		for _, v := range tc.values {
			if err != nil && len(v) > 3 && strings.Contains(err.Error(), v) {
				t.Errorf("the error shows the secret: %v", err)
			}
		}
	}
}
