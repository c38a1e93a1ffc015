package replicator

import (
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/testutil"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

const exampleYAML = `
links:
  - name: hub-to-spoke
    source: hub
    targets: [spoke-a, spoke-b]
    groups:
      include: ["ops-.*", "(?i)admins"]
      exclude: ["ops-test"]
    users:
      only_federated: true
      only_active: true
      exclude: ["svc-.*"]
    attributes:
      user: [displayName, emails, active, department]
      group: [displayName]
      map: {department: costCenter}
    match: {user: externalId, group: displayName}
    delete: {users: delete, groups: keep, only_managed: false}
    guard: {max_deletions: 5, max_percent: 10, window: 30m}
    dry_run: true
  - name: pair
    source: east
    targets: [west]
    bidirectional: true
full_reconcile:
  interval: 2h
`

func TestConfigDecodesYAML(t *testing.T) {
	cfg := testutil.DecodeValid(t, exampleYAML, DefaultConfig())
	l := cfg.Links[0]
	if l.Delete.ManagedOnly() || l.Guard.Window != 30*time.Minute || l.Attributes.Map["department"] != "costCenter" || !l.DryRun {
		t.Errorf("decoded link = %+v", l)
	}
	if cfg.FullReconcile.Interval != 2*time.Hour {
		t.Errorf("interval = %v", cfg.FullReconcile.Interval)
	}
}

func TestConfigRejectsUnknownKeys(t *testing.T) {
	if _, err := testutil.DecodeYAMLStrict("links:\n  - name: x\n    sorce: hub\n", DefaultConfig()); err == nil {
		t.Fatal("a misspelt key decoded")
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLinkDefaults(t *testing.T) {
	l := planner.Link{Name: "a", Source: "hub", Targets: []string{"spoke"}}.WithDefaults()
	if !l.Delete.ManagedOnly() || l.Delete.Users != planner.PolicyDeactivate || l.Delete.Groups != planner.PolicyDelete {
		t.Errorf("delete defaults = %+v", l.Delete)
	}
	if l.Match.User != planner.MatchUserName || l.Match.Group != planner.MatchDisplayName {
		t.Errorf("match defaults = %+v", l.Match)
	}
	if l.Guard != (planner.GuardConfig{MaxDeletions: planner.DefaultMaxDeletions, MaxPercent: planner.DefaultMaxPercent, Window: planner.DefaultGuardWindow}) {
		t.Errorf("guard defaults = %+v", l.Guard)
	}
	if len(l.Attributes.User) == 0 || len(l.Attributes.Group) == 0 {
		t.Errorf("attribute defaults = %+v", l.Attributes)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	ok := func() planner.Link {
		return planner.Link{Name: "hub-to-spoke", Source: "hub", Targets: []string{"spoke"}}
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"bad group pattern", func(c *Config) { c.Links[0].Groups.Include = []string{"ok", "("} },
			`links[0] "hub-to-spoke": groups.include[1]: "(" is not a valid pattern: missing closing )`},
		{"empty user pattern", func(c *Config) { c.Links[0].Users.Exclude = []string{""} },
			`links[0] "hub-to-spoke": users.exclude[0]: "" is not a valid pattern`},
		{"missing name", func(c *Config) { c.Links[0].Name = "" }, `links[0]: name: empty`},
		{"name not key-safe", func(c *Config) { c.Links[0].Name = "Hub To Spoke" }, `name: "Hub To Spoke"; use lower-case`},
		{"duplicate name", func(c *Config) {
			c.Links = append(c.Links, planner.Link{Name: "hub-to-spoke", Source: "x", Targets: []string{"y"}})
		},
			`links[1] "hub-to-spoke": name: also the name of links[0]`},
		{"bad source", func(c *Config) { c.Links[0].Source = "Hub!" }, `source: "Hub!" is not a domain short name`},
		{"no targets", func(c *Config) { c.Links[0].Targets = nil }, `targets: empty`},
		{"target is source", func(c *Config) { c.Links[0].Targets = []string{"hub"} }, `targets[0]: "hub" is the source`},
		{"target twice", func(c *Config) { c.Links[0].Targets = []string{"a", "a"} }, `targets[1]: "a" is listed twice`},
		{"bidirectional with two targets", func(c *Config) { c.Links[0].Targets = []string{"a", "b"}; c.Links[0].Bidirectional = true },
			`bidirectional: needs exactly one target`},
		{"direction twice", func(c *Config) {
			c.Links = append(c.Links, planner.Link{Name: "back", Source: "spoke", Targets: []string{"hub"}})
			c.Links[0].Bidirectional = true
		}, `links[1] "back": spoke -> hub is also replicated by links[0]`},
		{"unknown user attribute", func(c *Config) { c.Links[0].Attributes.User = []string{"shoeSize"} },
			`attributes.user[0]: "shoeSize" is not a user attribute`},
		{"unknown group attribute", func(c *Config) { c.Links[0].Attributes.Group = []string{"members"} },
			`attributes.group[0]: "members" is not a group attribute`},
		{"map of unlisted attribute", func(c *Config) { c.Links[0].Attributes.Map = map[string]string{"department": "costCenter"} },
			`attributes.map[department]: "department" is not listed in attributes.user`},
		{"map across types", func(c *Config) {
			c.Links[0].Attributes.User = []string{"emails"}
			c.Links[0].Attributes.Map = map[string]string{"emails": "department"}
		}, `attributes.map[emails]: "emails" -> "department"; only string attributes map`},
		{"map collides with a copied attribute", func(c *Config) {
			c.Links[0].Attributes.User = []string{"department", "costCenter"}
			c.Links[0].Attributes.Map = map[string]string{"department": "costCenter"}
		}, `attributes.map[department]: "costCenter" is also copied from itself`},
		{"bad match", func(c *Config) { c.Links[0].Match.User = "email" }, `match.user: "email"`},
		{"bad group match", func(c *Config) { c.Links[0].Match.Group = "userName" }, `match.group: "userName"`},
		{"deactivate groups", func(c *Config) { c.Links[0].Delete.Groups = "deactivate" }, `delete.groups: "deactivate"`},
		{"bad user policy", func(c *Config) { c.Links[0].Delete.Users = "purge" }, `delete.users: "purge"`},
		{"negative guard", func(c *Config) { c.Links[0].Guard.MaxDeletions = -1 }, `guard.max_deletions: -1`},
		{"percent over 100", func(c *Config) { c.Links[0].Guard.MaxPercent = 150 }, `guard.max_percent: 150`},
		{"short full reconcile", func(c *Config) { c.FullReconcile.Interval = time.Minute }, `full_reconcile.interval: 1m0s`},
		{"filter subjects", func(c *Config) { c.Consumer.FilterSubjects = []string{"x"} }, `consumer.filter_subjects`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Links = []planner.Link{ok()}
			tt.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCheckDomains(t *testing.T) {
	c := Config{Links: []planner.Link{{Name: "l", Source: "hub", Targets: []string{"spoke", "ghost"}}}}
	if err := c.CheckDomains([]string{"hub", "spoke", "ghost"}); err != nil {
		t.Fatalf("all known: %v", err)
	}
	err := c.CheckDomains([]string{"hub", "spoke"})
	if err == nil || !strings.Contains(err.Error(), `links[0] "l": targets[1]: "ghost" is not a configured domain`) {
		t.Fatalf("CheckDomains = %v", err)
	}
}
