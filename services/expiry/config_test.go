package expiry

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := testConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Groups = []TemporaryGroup{
		{Domain: "prod", Group: "OCI-Temp-Admins", MaxDuration: time.Hour, DefaultDuration: 2 * time.Hour},
		{Domain: "prod", Group: "oci-temp-admins", MaxDuration: time.Hour, DefaultDuration: time.Hour},
		{Domain: "Bad Name", Group: "", MaxDuration: 0},
	}
	err := cfg.Validate()
	for _, want := range []string{
		`groups[0] "OCI-Temp-Admins": default_duration: 2h0m0s exceeds max_duration 1h0m0s`,
		`groups[1] "oci-temp-admins": duplicates groups[0]`,
		`groups[2] "": domain: "Bad Name" is not a domain short name`,
		`groups[2]: group: empty`,
		`max_duration: 0s`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want %q", err, want)
		}
	}
}
