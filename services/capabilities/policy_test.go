package capabilities

import (
	"slices"
	"testing"
)

func TestPolicyDecide(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	noKeys := Flags{CanUseAPIKeys: no, CanUseAuthTokens: no, CanUseCustomerSecretKeys: no}
	// Two rules whose patterns both match "dev-..." names.
	devsThenD := Config{Default: noKeys, Rules: []Rule{
		{Name: "devs", Match: Match{UserName: "dev-.*"}, Set: Flags{CanUseAPIKeys: yes}},
		{Name: "everyone-d", Match: Match{UserName: "d.*"}, Set: Flags{CanUseAuthTokens: yes}},
	}}
	tests := []struct {
		name     string
		cfg      Config
		domain   string
		user     User
		wantRule string
		want     Flags
	}{
		{
			name:     "default only",
			cfg:      Config{Default: noKeys},
			user:     User{UserName: "jane"},
			wantRule: defaultRuleName,
			want:     noKeys,
		},
		{
			name:     "first match wins",
			cfg:      devsThenD,
			user:     User{UserName: "dev-jane"},
			wantRule: "devs",
			want:     Flags{CanUseAPIKeys: yes, CanUseAuthTokens: no, CanUseCustomerSecretKeys: no},
		},
		{
			name:     "a later rule applies when earlier ones do not match",
			cfg:      devsThenD,
			user:     User{UserName: "dora"},
			wantRule: "everyone-d",
			want:     Flags{CanUseAPIKeys: no, CanUseAuthTokens: yes, CanUseCustomerSecretKeys: no},
		},
		{
			name: "group rule, any of, case-insensitive",
			cfg: Config{Default: noKeys, Rules: []Rule{
				{Name: "admins", Match: Match{Groups: []string{"Domain_Administrators", "Cloud-Admins"}}, Set: Flags{CanUseAPIKeys: yes}},
			}},
			user:     User{UserName: "jane", Groups: []string{"Everyone", "cloud-admins"}},
			wantRule: "admins",
			want:     Flags{CanUseAPIKeys: yes, CanUseAuthTokens: no, CanUseCustomerSecretKeys: no},
		},
		{
			name: "group rule, not a member",
			cfg: Config{Default: noKeys, Rules: []Rule{
				{Name: "admins", Match: Match{Groups: []string{"Cloud-Admins"}}, Set: Flags{CanUseAPIKeys: yes}},
			}},
			user:     User{UserName: "jane", Groups: []string{"Everyone"}},
			wantRule: defaultRuleName,
			want:     noKeys,
		},
		{
			name: "federated rule",
			cfg: Config{Default: Flags{CanUseConsolePassword: yes}, Rules: []Rule{
				{Name: "federated", Match: Match{Federated: yes}, Set: Flags{CanUseConsolePassword: no, CanUseAPIKeys: no}},
			}},
			user:     User{UserName: "jane@corp", Federated: true},
			wantRule: "federated",
			want:     Flags{CanUseConsolePassword: no, CanUseAPIKeys: no},
		},
		{
			name: "federated rule, local user",
			cfg: Config{Default: Flags{CanUseConsolePassword: yes}, Rules: []Rule{
				{Name: "federated", Match: Match{Federated: yes}, Set: Flags{CanUseConsolePassword: no}},
			}},
			user:     User{UserName: "break-glass"},
			wantRule: defaultRuleName,
			want:     Flags{CanUseConsolePassword: yes},
		},
		{
			name: "userName pattern is anchored",
			cfg: Config{Rules: []Rule{
				{Name: "svc", Match: Match{UserName: "svc-[0-9]+"}, Set: Flags{CanUseAPIKeys: yes}},
			}},
			user:     User{UserName: "not-svc-1"},
			wantRule: defaultRuleName,
			want:     Flags{},
		},
		{
			name: "userName pattern matches the whole value",
			cfg: Config{Rules: []Rule{
				{Name: "svc", Match: Match{UserName: "svc-[0-9]+"}, Set: Flags{CanUseAPIKeys: yes}},
			}},
			user:     User{UserName: "svc-42"},
			wantRule: "svc",
			want:     Flags{CanUseAPIKeys: yes},
		},
		{
			name: "email pattern, case-insensitive by flag",
			cfg: Config{Rules: []Rule{
				{Name: "contractors", Match: Match{Email: `(?i).*@contractor\.example`}, Set: Flags{CanUseSMTPCredentials: no}},
			}},
			user:     User{UserName: "bob", Email: "Bob@Contractor.EXAMPLE"},
			wantRule: "contractors",
			want:     Flags{CanUseSMTPCredentials: no},
		},
		{
			name: "email pattern never matches a user without email",
			cfg: Config{Rules: []Rule{
				{Name: "any-email", Match: Match{Email: `.*`}, Set: Flags{CanUseSMTPCredentials: no}},
			}},
			user:     User{UserName: "bob"},
			wantRule: defaultRuleName,
			want:     Flags{},
		},
		{
			name: "every criterion must hold",
			cfg: Config{Rules: []Rule{
				{Name: "prod-fed-admins", Match: Match{Domains: []string{"prod"}, Federated: yes, Groups: []string{"admins"}, UserName: "a.*"},
					Set: Flags{CanUseAPIKeys: yes}},
			}},
			domain:   "dev",
			user:     User{UserName: "amy", Federated: true, Groups: []string{"admins"}},
			wantRule: defaultRuleName,
			want:     Flags{},
		},
		{
			name: "domain rule",
			cfg: Config{Rules: []Rule{
				{Name: "prod-only", Match: Match{Domains: []string{"prod"}}, Set: Flags{CanUseDBCredentials: no}},
			}},
			domain:   "prod",
			user:     User{UserName: "amy"},
			wantRule: "prod-only",
			want:     Flags{CanUseDBCredentials: no},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newPolicy(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			domain := tt.domain
			if domain == "" {
				domain = "prod"
			}
			d := p.decide(domain, tt.user)
			if d.Rule != tt.wantRule {
				t.Errorf("rule = %q, want %q", d.Rule, tt.wantRule)
			}
			if !d.Target.Equal(tt.want) {
				t.Errorf("target = %v, want %v", d.Target, tt.want)
			}
		})
	}
}

// Flags neither the default nor the matching rule sets keep the user's
// values: they are not managed, and not listed as changes.
func TestUnmanagedFlagsAreLeftAlone(t *testing.T) {
	no := ptr(false)
	p, err := newPolicy(Config{Default: Flags{CanUseAPIKeys: no}, Rules: []Rule{
		{Name: "fed", Match: Match{Federated: ptr(true)}, Set: Flags{CanUseConsolePassword: no}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	u := User{UserName: "jane", Federated: true, Flags: allTrue()}
	u.Flags.CanUseSMTPCredentials = no // turned off by hand; the policy has no opinion
	d := p.decide("prod", u)
	desired := u.Flags.overlay(d.Target)
	want := allTrue()
	want.CanUseAPIKeys, want.CanUseConsolePassword, want.CanUseSMTPCredentials = no, no, no
	if !desired.Equal(want) {
		t.Errorf("desired = %v, want %v", desired, want)
	}
	changes := u.Flags.changes(d.Target)
	wantChanges := []string{"canUseApiKeys: true -> false", "canUseConsolePassword: true -> false"}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("changes = %q, want %q", changes, wantChanges)
	}
	// A user that already complies has no changes, whatever its other flags.
	if c := desired.changes(d.Target); len(c) != 0 {
		t.Errorf("compliant user has changes %q", c)
	}
	// An unknown current value is a change.
	if c := (Flags{}).changes(Flags{CanUseAPIKeys: no}); !slices.Equal(c, []string{"canUseApiKeys: unknown -> false"}) {
		t.Errorf("changes from unknown = %q", c)
	}
}

func TestPolicyNeedsGroups(t *testing.T) {
	set := Flags{CanUseAPIKeys: ptr(false)}
	p, _ := newPolicy(Config{Rules: []Rule{{Name: "n", Match: Match{UserName: "x"}, Set: set}}})
	if p.readsGroups() {
		t.Error("a policy without group rules needs groups")
	}
	p, _ = newPolicy(Config{Rules: []Rule{{Name: "g", Match: Match{Groups: []string{"a"}}, Set: set}}})
	if !p.readsGroups() {
		t.Error("a policy with a group rule does not need groups")
	}
}

func TestNewPolicyValidates(t *testing.T) {
	_, err := newPolicy(Config{Rules: []Rule{{Name: "admins", Match: Match{UserName: "("}, Set: Flags{CanUseAPIKeys: ptr(true)}}}})
	if err == nil || err.Error() != `rules[0] "admins": match.user_name: "(" is not a valid pattern: missing closing )` {
		t.Fatalf("err = %v", err)
	}
}
