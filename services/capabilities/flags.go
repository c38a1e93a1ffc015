package capabilities

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// flagDef ties one flag's field to its names.
type flagDef struct {
	// key is the YAML key: "can_use_api_keys".
	key string
	// attr is the SCIM attribute, as in UserCapabilitiesChanger and the
	// capabilities:User extension: "canUseApiKeys".
	attr string
	// field points at the flag in a Flags.
	field func(*Flags) **bool
	// proto points at the flag in a Capabilities message.
	proto func(*iamflowv1.Capabilities) **bool
}

// flagDefs lists the flags in the order OCI documents them.
var flagDefs = []flagDef{
	{"can_use_api_keys", "canUseApiKeys", func(f *Flags) **bool { return &f.CanUseAPIKeys },
		func(c *iamflowv1.Capabilities) **bool { return &c.CanUseApiKeys }},
	{"can_use_auth_tokens", "canUseAuthTokens", func(f *Flags) **bool { return &f.CanUseAuthTokens },
		func(c *iamflowv1.Capabilities) **bool { return &c.CanUseAuthTokens }},
	{"can_use_console_password", "canUseConsolePassword", func(f *Flags) **bool { return &f.CanUseConsolePassword },
		func(c *iamflowv1.Capabilities) **bool { return &c.CanUseConsolePassword }},
	{"can_use_customer_secret_keys", "canUseCustomerSecretKeys", func(f *Flags) **bool { return &f.CanUseCustomerSecretKeys },
		func(c *iamflowv1.Capabilities) **bool { return &c.CanUseCustomerSecretKeys }},
	{"can_use_oauth2_client_credentials", "canUseOAuth2ClientCredentials", func(f *Flags) **bool { return &f.CanUseOAuth2ClientCredentials },
		func(c *iamflowv1.Capabilities) **bool { return &c.CanUseOAuth2ClientCredentials }},
	{"can_use_smtp_credentials", "canUseSmtpCredentials", func(f *Flags) **bool { return &f.CanUseSMTPCredentials },
		func(c *iamflowv1.Capabilities) **bool { return &c.CanUseSmtpCredentials }},
	{"can_use_db_credentials", "canUseDbCredentials", func(f *Flags) **bool { return &f.CanUseDBCredentials },
		func(c *iamflowv1.Capabilities) **bool { return &c.CanUseDbCredentials }},
}

// ptr returns a pointer to a copy of b.
func ptr(b bool) *bool { return &b }

// IsZero reports whether no flag is set.
func (f Flags) IsZero() bool {
	for _, d := range flagDefs {
		if *d.field(&f) != nil {
			return false
		}
	}
	return true
}

// overlay returns f with every flag o sets replaced by o's value.
func (f Flags) overlay(o Flags) Flags {
	out := f.clone()
	for _, d := range flagDefs {
		if v := *d.field(&o); v != nil {
			*d.field(&out) = ptr(*v)
		}
	}
	return out
}

// clone copies f, so that no pointer is shared.
func (f Flags) clone() Flags {
	var out Flags
	for _, d := range flagDefs {
		if v := *d.field(&f); v != nil {
			*d.field(&out) = ptr(*v)
		}
	}
	return out
}

// Equal reports whether f and o set the same flags to the same values.
func (f Flags) Equal(o Flags) bool {
	for _, d := range flagDefs {
		a, b := *d.field(&f), *d.field(&o)
		if (a == nil) != (b == nil) || (a != nil && *a != *b) {
			return false
		}
	}
	return true
}

// changes lists, for every flag target sets that f does not already have,
// "canUseApiKeys: true -> false" ("unknown" for a flag f does not know).
// An empty list means f complies with target.
func (f Flags) changes(target Flags) []string {
	var out []string
	for _, d := range flagDefs {
		want := *d.field(&target)
		if want == nil {
			continue
		}
		have := *d.field(&f)
		if have != nil && *have == *want {
			continue
		}
		out = append(out, d.attr+": "+fmtFlag(have)+" -> "+strconv.FormatBool(*want))
	}
	return out
}

// String is "{canUseApiKeys: false, canUseAuthTokens: true}", set flags only.
func (f Flags) String() string {
	var parts []string
	for _, d := range flagDefs {
		if v := *d.field(&f); v != nil {
			parts = append(parts, d.attr+": "+strconv.FormatBool(*v))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func fmtFlag(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return strconv.FormatBool(*b)
}

// Proto converts f to the API message.
func (f Flags) Proto() *iamflowv1.Capabilities {
	c := &iamflowv1.Capabilities{}
	for _, d := range flagDefs {
		if v := *d.field(&f); v != nil {
			*d.proto(c) = ptr(*v)
		}
	}
	return c
}

// auditValues renders f for an audit record's before and after maps.
func (f Flags) auditValues() map[string]string {
	out := map[string]string{}
	for _, d := range flagDefs {
		if v := *d.field(&f); v != nil {
			out[d.attr] = strconv.FormatBool(*v)
		}
	}
	return out
}

// only returns f restricted to the flags mask sets.
func (f Flags) only(mask Flags) Flags {
	var out Flags
	for _, d := range flagDefs {
		if *d.field(&mask) != nil {
			if v := *d.field(&f); v != nil {
				*d.field(&out) = ptr(*v)
			}
		}
	}
	return out
}

// UnmarshalYAML reads flags strictly, whatever the decoder's settings: an
// unknown key or a value that is not true or false is an error naming its
// line and the valid keys.
func (f *Flags) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		*f = Flags{}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: flags are a mapping of %s to true or false", n.Line, flagKeys())
	}
	var out Flags
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var def *flagDef
		for j := range flagDefs {
			if flagDefs[j].key == k.Value {
				def = &flagDefs[j]
			}
		}
		if def == nil {
			return fmt.Errorf("line %d: unknown flag %q; the flags are %s", k.Line, k.Value, flagKeys())
		}
		if *def.field(&out) != nil {
			return fmt.Errorf("line %d: %s is given twice", k.Line, k.Value)
		}
		var b bool
		if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
			return fmt.Errorf("line %d: %s: want true or false", v.Line, k.Value)
		}
		*def.field(&out) = ptr(b)
	}
	*f = out
	return nil
}

func flagKeys() string {
	keys := make([]string, len(flagDefs))
	for i, d := range flagDefs {
		keys[i] = d.key
	}
	return strings.Join(keys, ", ")
}
