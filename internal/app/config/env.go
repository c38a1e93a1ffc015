package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
)

// EnvPrefix starts every environment override.
const EnvPrefix = "IAMFLOW_"

// envAliases are short names for overrides people reach for first.
var envAliases = map[string]string{
	"IAMFLOW_NATS_URL": "IAMFLOW_NATS_URLS",
}

var (
	durationType  = reflect.TypeOf(time.Duration(0))
	secretRefType = reflect.TypeOf(secret.Ref(""))
)

// applyEnv overrides scalar settings from IAMFLOW_<SECTION>_<KEY> variables,
// the YAML path upper-cased and joined by '_' (IAMFLOW_NATS_URLS,
// IAMFLOW_INGEST_MAX_BODY_BYTES, IAMFLOW_ADMIN_TOKEN). Lists take
// comma-separated values. Lists of structs (domains) are file-only.
//
// A variable named like a secret setting overrides it only when its value is
// itself a reference (env:, file:, vault:). Any other value is taken to be
// the secret a reference points to, not an override: with
// `admin.token: env:IAMFLOW_ADMIN_TOKEN` in the file, IAMFLOW_ADMIN_TOKEN
// holds the token, and the setting keeps naming it.
func applyEnv(cfg *Config, env func(string) (string, bool)) error {
	lookup := func(name string) (string, bool) {
		if v, ok := env(name); ok {
			return v, true
		}
		for alias, target := range envAliases {
			if target == name {
				return env(alias)
			}
		}
		return "", false
	}
	return walkEnv(reflect.ValueOf(cfg).Elem(), strings.TrimSuffix(EnvPrefix, "_"), lookup)
}

// EnvNames lists every environment variable that overrides a setting, for docs and --help.
func EnvNames() []string {
	var names []string
	_ = walkEnv(reflect.ValueOf(&Config{}).Elem(), strings.TrimSuffix(EnvPrefix, "_"), func(name string) (string, bool) {
		names = append(names, name)
		return "", false
	})
	return names
}

func walkEnv(v reflect.Value, prefix string, env func(string) (string, bool)) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != durationType {
			if err := walkEnv(fv, name, env); err != nil {
				return err
			}
			continue
		}
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() != reflect.String {
			continue // lists of structs (domains) are configured in the file only
		}
		raw, ok := env(name)
		if !ok {
			continue
		}
		if fv.Type() == secretRefType && secret.Ref(raw).Validate() != nil {
			continue // the secret itself, not a reference to it
		}
		if err := setScalar(fv, raw); err != nil {
			return fmt.Errorf("environment variable %s: %w", name, err)
		}
	}
	return nil
}

func setScalar(v reflect.Value, raw string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s or 2h", raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer: // an optional scalar: set means present
		p := reflect.New(v.Type().Elem())
		if err := setScalar(p.Elem(), raw); err != nil {
			return err
		}
		v.Set(p)
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		v.SetInt(n)
	case reflect.Slice:
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		s := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			s.Index(i).SetString(p)
		}
		v.Set(s)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// walkSecretRefs calls fn with the YAML path (domains[0].client_secret) of
// every secret reference in v, lists of structs included.
func walkSecretRefs(v reflect.Value, path string, fn func(key string, ref secret.Ref)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		fv := v.Field(i)
		if opts == "inline" && fv.Kind() == reflect.Struct {
			walkSecretRefs(fv, path, fn)
			continue
		}
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		key := tag
		if path != "" {
			key = path + "." + tag
		}
		switch {
		case fv.Type() == secretRefType:
			fn(key, secret.Ref(fv.String()))
		case fv.Kind() == reflect.Struct && fv.Type() != durationType:
			walkSecretRefs(fv, key, fn)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			for j := 0; j < fv.Len(); j++ {
				walkSecretRefs(fv.Index(j), fmt.Sprintf("%s[%d]", key, j), fn)
			}
		}
	}
}
