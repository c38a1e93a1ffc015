// Package secret resolves secret references from the configuration. A
// reference says where a secret lives, never what it is:
//
//	env:NAME                 the environment variable NAME
//	file:/path/to/file       the file's content, trailing newline removed
//	vault:ocid1.vaultsecret  an OCI Vault secret, read by a Resolver built
//	                         with WithVault (the package-level Resolve refuses it)
//
// Resolved values are wrapped in Value, which prints as "[redacted]" in logs,
// errors, fmt and JSON, so a secret cannot leak by being printed.
package secret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Ref is a reference to a secret: "env:NAME", "file:/path" or "vault:<secret ocid>".
type Ref string

// ErrUnsupported is returned for a reference scheme this build cannot resolve.
var ErrUnsupported = errors.New("unsupported secret reference")

// IsZero reports whether the reference is empty.
func (r Ref) IsZero() bool { return r == "" }

// Scheme is the part before the first colon: "env", "file" or "vault".
func (r Ref) Scheme() string {
	s, _, _ := strings.Cut(string(r), ":")
	return s
}

// Validate checks the reference's form without resolving it. Its errors never
// contain the reference's text after the scheme if the scheme is unknown, since
// that text may be a secret pasted in by mistake.
func (r Ref) Validate() error {
	scheme, rest, ok := strings.Cut(string(r), ":")
	if !ok || rest == "" {
		return errors.New(`not a secret reference: write env:NAME, file:/path or vault:<secret ocid> (literal secrets are not accepted)`)
	}
	switch scheme {
	case "env":
		if strings.ContainsAny(rest, "= \t\n") {
			return fmt.Errorf("env reference %q: not a valid variable name", rest)
		}
	case "file":
		if !strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, ".") {
			return fmt.Errorf("file reference %q: give an absolute or ./relative path", rest)
		}
	case "vault":
		if !strings.HasPrefix(rest, "ocid1.vaultsecret.") {
			return fmt.Errorf("vault reference %q: expected a secret OCID (ocid1.vaultsecret....)", rest)
		}
	default:
		return errors.New(`unknown secret reference scheme: write env:NAME, file:/path or vault:<secret ocid> (literal secrets are not accepted)`)
	}
	return nil
}

// Require checks a reference a configuration must have, under its yaml
// key: empty is "<key>: empty; <fix>", a malformed one "<key>: " and
// Validate's reason. It returns nil for a usable reference.
func (r Ref) Require(key, fix string) error {
	if r.IsZero() {
		return fmt.Errorf("%s: empty; %s", key, fix)
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%s: %v", key, err)
	}
	return nil
}

// Errors Resolve wraps when a reference points at nothing usable.
var (
	// ErrNotSet: the environment variable of an env: reference is not set.
	ErrNotSet = errors.New("is not set")
	// ErrEmpty: the variable or file a reference names holds nothing.
	ErrEmpty = errors.New("empty")
)

// Resolve reads the secret the reference points to.
func Resolve(ctx context.Context, r Ref) (Value, error) {
	return ResolveWith(ctx, r, os.LookupEnv)
}

// ResolveWith is Resolve reading environment variables through lookup
// instead of os.LookupEnv (a command checking a configuration for another
// environment, tests).
func ResolveWith(_ context.Context, r Ref, lookup func(string) (string, bool)) (Value, error) {
	if err := r.Validate(); err != nil {
		return Value{}, err
	}
	scheme, rest, _ := strings.Cut(string(r), ":")
	switch scheme {
	case "env":
		v, ok := lookup(rest)
		if !ok {
			return Value{}, fmt.Errorf("secret %s: environment variable %s %w", r, rest, ErrNotSet)
		}
		if v == "" {
			return Value{}, fmt.Errorf("secret %s: environment variable %s is set but %w", r, rest, ErrEmpty)
		}
		return Value{v: v}, nil
	case "file":
		b, err := os.ReadFile(rest)
		if err != nil {
			return Value{}, fmt.Errorf("secret %s: %w", r, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return Value{}, fmt.Errorf("secret %s: the file is %w", r, ErrEmpty)
		}
		return Value{v: v}, nil
	default:
		return Value{}, fmt.Errorf("secret %s: %w: configure vault and resolve with a secret.Resolver built WithVault", r, ErrUnsupported)
	}
}

// Value is a resolved secret. Only Reveal gives its text; every way of
// printing it gives "[redacted]".
type Value struct{ v string }

// NewValue wraps a secret obtained some other way (e.g. generated in dev mode).
func NewValue(s string) Value { return Value{v: s} }

const redacted = "[redacted]"

// Reveal returns the secret's text. Call it only where the secret is used.
func (v Value) Reveal() string { return v.v }

// IsZero reports whether the value is empty.
func (v Value) IsZero() bool { return v.v == "" }

// String implements fmt.Stringer.
func (Value) String() string { return redacted }

// GoString implements fmt.GoStringer, so %#v does not reveal the value.
func (Value) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (Value) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler.
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML and others).
func (Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }
