package config

import (
	"strings"
	"testing"

	"github.com/iamflow/iamflow/services/dbprovisioner"
)

// principal_domain defaults to the domain's oci_name, the name Autonomous
// Database expects: no prefix for the Default domain, the OCI name for any
// other, and never iamflow's short name for the domain.
func TestDbprovisionerPrincipalDomainFromOCIName(t *testing.T) {
	const yaml = `domains:
  - {name: hub, oci_name: Default, url: 'https://idcs-a.identity.oraclecloud.com', client_id: a, client_secret: env:A}
  - {name: sales, oci_name: sales_domain, url: 'https://idcs-b.identity.oraclecloud.com', client_id: b, client_secret: env:B}
dbprovisioner:
  databases:
    - {name: hr, domain: hub, groups: [{group: Readers, roles: [APP_READER]}], ords: {url: 'https://db.example.com/ords/admin', client_id: c, client_secret: env:C}}
    - {name: crm, domain: sales, groups: [{group: Readers, roles: [APP_READER]}], ords: {url: 'https://db.example.com/ords/crm', client_id: c, client_secret: env:C}}
    - {name: dw, domain: sales, principal_domain: SalesEU, groups: [{group: Readers, roles: [APP_READER]}], ords: {url: 'https://db.example.com/ords/dw', client_id: c, client_secret: env:C}}
`
	cfg, err := loadDev(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"hr":  `CREATE USER "ALICE@EXAMPLE.COM" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=alice@example.com'`,
		"crm": `CREATE USER "ALICE@EXAMPLE.COM" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=sales_domain/alice@example.com'`,
		"dw":  `CREATE USER "ALICE@EXAMPLE.COM" IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=SalesEU/alice@example.com'`,
	}
	for _, db := range cfg.DbprovisionerConfig().Databases {
		m, err := dbprovisioner.NewMapping(db)
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.PlanUser(dbprovisioner.UserView{Found: true,
			User: dbprovisioner.User{ID: "a1", UserName: "alice@example.com", Active: true, Groups: []string{"Readers"}}})
		if err != nil {
			t.Fatal(err)
		}
		if sql := p.SQL(); len(sql) == 0 || sql[0] != want[db.Name] {
			t.Errorf("database %s: %q, want first %s", db.Name, sql, want[db.Name])
		}
	}
	if cfg.Dbprovisioner.Databases[0].PrincipalDomain != "" {
		t.Error("DbprovisionerConfig changed the loaded configuration")
	}
}

// A domain known only by URL gives the database no name to use: config check
// says which key to set.
func TestDbprovisionerPrincipalDomainUnknown(t *testing.T) {
	const yaml = `domains:
  - {name: hub, url: 'https://idcs-a.identity.oraclecloud.com', client_id: a, client_secret: env:A}
dbprovisioner:
  databases:
    - {name: hr, domain: hub, groups: [{group: Readers, roles: [APP_READER]}], ords: {url: 'https://db.example.com/ords/admin', client_id: c, client_secret: env:C}}
`
	_, err := loadDev(t, yaml)
	if w := `dbprovisioner.databases[0] "hr": principal_domain: unknown; set oci_name on domain "hub"`; err == nil || !strings.Contains(err.Error(), w) {
		t.Fatalf("Validate = %v, want %q", err, w)
	}
}
