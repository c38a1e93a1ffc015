package dbprovisioner

import (
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/ords"
	"github.com/iamflow/iamflow/internal/secret"
)

func validDB() DatabaseConfig {
	d := userDB()
	d.ORDS = ords.DefaultConfig()
	d.ORDS.URL, d.ORDS.ClientID, d.ORDS.ClientSecret = "https://adb.example.com/ords/admin", "cid", secret.Ref("env:ORDS_SECRET")
	return d
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Databases = []DatabaseConfig{validDB()}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	// ORDS zero fields take their defaults.
	d := validDB()
	d.ORDS = ords.Config{URL: d.ORDS.URL, ClientID: "cid", ClientSecret: "env:X"}
	cfg.Databases = []DatabaseConfig{d}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("ords defaults: %v", err)
	}
	if got := d.WithDefaults().ORDS.MaxConcurrency; got != defaultMaxConcurrency {
		t.Errorf("ords.max_concurrency %d", got)
	}

	bad := DefaultConfig()
	bad.Reconcile.Interval = time.Second
	bad.Consumer.FilterSubjects = []string{"x"}
	b1 := validDB()
	b1.Name = "HR!"
	b1.Mode = "weird"
	b1.OnLeave = "explode"
	b1.MaxConcurrency = 99
	b1.Groups = append(b1.Groups, GroupMapping{Group: "hr readers", Roles: []string{"DBA", `x" cascade`}, Schema: "S"})
	b2 := validDB()
	b2.Name = "dw"
	b2.Domain = "Prod"
	b2.Mode = modeShared
	b2.OnLeave = onLeaveDrop
	b2.Groups = []GroupMapping{{Group: "A", Roles: []string{"R"}}, {Group: "B/C", Schema: "S"}, {Group: "D", Schema: "s"}}
	b3 := validDB()
	b3.Name = "gr"
	b3.Mode = modeGlobalRole
	b3.Groups = []GroupMapping{{Group: "A"}, {Group: "B", Roles: []string{"R1", "R2"}}}
	b3.ORDS.URL = ""
	bad.Databases = []DatabaseConfig{b1, b2, b3, {Name: "dw"}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`reconcile.interval: 1s`,
		`consumer.filter_subjects`,
		`databases[0]: name: "HR!" is not a database name`,
		`databases[0]: mode: "weird"`,
		`databases[0]: on_leave: "explode"`,
		`databases[0]: max_concurrency: 99`,
		`databases[0]: groups[2] "hr readers": group: also mapped by groups[0]`,
		`databases[0]: groups[2] "hr readers": roles[0]: ords: identifier "DBA" refused: Oracle-maintained name`,
		`databases[0]: groups[2] "hr readers": roles[1]: ords: identifier "x\" cascade" refused`,
		`databases[0]: groups[2] "hr readers": schema: applies to mode shared only`,
		`databases[1] "dw": domain: "Prod" is not a domain short name`,
		`databases[1] "dw": on_leave: "drop" applies to mode user only`,
		`databases[1] "dw": groups[0] "A": schema: empty`,
		`databases[1] "dw": groups[1] "B/C": group: ords: IAM group "B/C" refused`,
		`databases[1] "dw": groups[2] "D": schema: S is also the schema of groups[1]`,
		`databases[2] "gr": ords.url: empty`,
		`databases[2] "gr": groups[0] "A": roles: 0 given`,
		`databases[2] "gr": groups[1] "B": roles: 2 given`,
		`databases[3]: name: "dw" is also the name of databases[1]`,
		`databases[3] "dw": domain: empty`,
		`databases[3] "dw": groups: empty`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q", want)
		}
	}
	if t.Failed() {
		t.Logf("got:\n%v", err)
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "databases: empty") {
		t.Errorf("empty config: %v", err)
	}
}

// FuzzPlanUser: whatever the IAM userName and groups, a plan either is
// refused with no statement, or every statement quotes exactly the account
// name and only validated names.
func FuzzPlanUser(f *testing.F) {
	for _, s := range []string{"alice@example.com", `x" cascade; drop user admin--`, "bob'; --", "a\x00b", "ADMIN", "o'brien", "Ω", "a b"} {
		f.Add(s, true, false)
		f.Add(s, false, true)
	}
	m := mustMapping(f, userDB())
	f.Fuzz(func(t *testing.T, name string, inGroup, hasAccount bool) {
		v := UserView{User: User{UserName: name, Active: true}, Found: true}
		if inGroup {
			v.User.Groups = []string{"HR Readers"}
		}
		if hasAccount {
			v.Account = &DBUser{Name: strings.ToUpper(name), Status: "OPEN", ExternalName: "IAM_PRINCIPAL_NAME=" + name}
			v.Roles = []string{"HR_WRITE"}
		}
		p, err := m.PlanUser(v)
		if err != nil {
			if len(p.Steps) != 0 {
				t.Fatalf("refused plan holds %q", p.SQL())
			}
			return
		}
		id, err := ords.Ident(p.Subject)
		if err != nil {
			t.Fatalf("planned for an unsafe account %q", p.Subject)
		}
		for _, sql := range p.SQL() {
			if strings.Count(sql, `"`)%2 != 0 || strings.Count(sql, "'")%2 != 0 || strings.ContainsAny(sql, ";\x00\n") ||
				!strings.Contains(sql, id.Quoted()) {
				t.Fatalf("unsafe statement %q", sql)
			}
		}
	})
}
