package config

import (
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
)

func TestExampleDbprovisionerAndSecrets(t *testing.T) {
	cfg, err := Load("../../../deploy/iamflow.example.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	dbs := cfg.Dbprovisioner.Databases
	if len(dbs) != 1 || dbs[0].Name != "hr" || dbs[0].Domain != "hub" || len(dbs[0].Groups) != 2 || dbs[0].ORDS.ClientSecret.Scheme() != "vault" {
		t.Fatalf("dbprovisioner.databases = %+v", dbs)
	}
	if cfg.Dbprovisioner.Reconcile.Interval != time.Hour || !cfg.Dbprovisioner.Reconcile.OnStart {
		t.Fatalf("dbprovisioner.reconcile = %+v", cfg.Dbprovisioner.Reconcile)
	}
	if !cfg.Secrets.VaultConfigured() || cfg.Secrets.Vault.Auth != secret.VaultAuthInstancePrincipal || cfg.Secrets.Vault.RefreshInterval != 5*time.Minute {
		t.Fatalf("secrets = %+v", cfg.Secrets)
	}
}

func TestDefaultsHaveNoDatabaseAndNoVault(t *testing.T) {
	cfg := Default()
	if len(cfg.Dbprovisioner.Databases) != 0 || cfg.Secrets.VaultConfigured() {
		t.Fatalf("defaults: dbprovisioner %+v, secrets %+v", cfg.Dbprovisioner, cfg.Secrets)
	}
	if cfg.Dbprovisioner.Reconcile.Interval != time.Hour || cfg.Dbprovisioner.Consumer.Durable != "dbprovisioner" {
		t.Fatalf("dbprovisioner defaults = %+v", cfg.Dbprovisioner)
	}
}

func TestDbprovisionerAndSecretsValidation(t *testing.T) {
	const domains = "domains:\n" +
		"  - {name: hub, oci_name: Default, url: 'https://idcs-x.identity.oraclecloud.com', client_id: abc, client_secret: env:X}\n" +
		"  - {name: spoke, oci_name: Spoke}\n"
	db := func(domain, secretRef string) string {
		return "dbprovisioner:\n  databases:\n    - name: hr\n      domain: " + domain + "\n" +
			"      groups: [{group: Readers, roles: [APP_READER]}]\n" +
			"      ords: {url: 'https://db.example.com/ords/admin', client_id: c, client_secret: '" + secretRef + "'}\n"
	}
	tests := []struct {
		name string
		yaml string
		want []string // empty: valid
	}{
		{"valid", domains + db("hub", "env:ORDS_SECRET"), nil},
		{"vault with secrets.vault", domains + db("hub", "vault:ocid1.vaultsecret.oc1..x") + "secrets:\n  vault: {auth: resource_principal}\n", nil},
		{"unknown domain", domains + db("nowhere", "env:S"), []string{`dbprovisioner.databases[0] "hr": domain: "nowhere" is not a configured domain`}},
		{"domain without API", domains + db("spoke", "env:S"), []string{`dbprovisioner.databases[0] "hr": domain: "spoke" has no API access configured`}},
		{"vault without secrets.vault", domains + db("hub", "vault:ocid1.vaultsecret.oc1..x"), []string{`dbprovisioner.databases[0] "hr": ords.client_secret: a vault: reference needs secrets.vault`}},
		{"literal secret", domains + db("hub", "hunter2"), []string{`dbprovisioner.databases[0] "hr": ords.client_secret: not a secret reference`}},
		{"section checked", domains + db("hub", "env:S") + "  reconcile: {interval: 1m}\n", []string{"dbprovisioner.reconcile.interval: 1m0s"}},
		{"oracle role", strings.Replace(domains+db("hub", "env:S"), "APP_READER", "DBA", 1), []string{`dbprovisioner.databases[0] "hr": groups[0] "Readers": roles[0]`}},
		{"vault elsewhere", strings.Replace(domains, "client_secret: env:X", "client_secret: vault:ocid1.vaultsecret.oc1..y", 1) +
			"ingest: {password: vault:ocid1.vaultsecret.oc1..z}\nsecrets:\n  vault: {auth: resource_principal}\n",
			[]string{"domains[0].client_secret: vault: references are read only for dbprovisioner ORDS credentials", "ingest.password: vault: references are read only"}},
		{"vault auth", "secrets:\n  vault: {auth: password, region: eu-frankfurt-1}\n", []string{`secrets.vault.auth: "password"`}},
		{"vault settings without auth", "secrets:\n  vault: {region: eu-frankfurt-1}\n", []string{`secrets.vault.auth: ""`}},
		{"profile needs config_file", "secrets:\n  vault: {auth: instance_principal, profile: X}\n", []string{"secrets.vault.profile, config_path: only used with auth config_file"}},
		{"vault unknown key", "secrets:\n  vault: {auth: config_file, token: x}\n", []string{"field token not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadDev(t, tt.yaml)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("valid configuration refused:\n%v", err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the literal secret: %v", err)
			}
		})
	}
}

func TestDbprovisionerAndSecretsEnvOverrides(t *testing.T) {
	cfg, err := Load("", envMap(map[string]string{
		"IAMFLOW_SECRETS_VAULT_AUTH":               "resource_principal",
		"IAMFLOW_SECRETS_VAULT_REGION":             "us-ashburn-1",
		"IAMFLOW_SECRETS_VAULT_REFRESH_INTERVAL":   "1m",
		"IAMFLOW_DBPROVISIONER_RECONCILE_INTERVAL": "2h",
		"IAMFLOW_DBPROVISIONER_RECONCILE_ON_START": "false",
		"IAMFLOW_DBPROVISIONER_CONSUMER_DURABLE":   "dbp",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if v := cfg.Secrets.Vault; v.Auth != secret.VaultAuthResourcePrincipal || v.Region != "us-ashburn-1" || v.RefreshInterval != time.Minute {
		t.Errorf("secrets.vault = %+v", v)
	}
	if d := cfg.Dbprovisioner; d.Reconcile.Interval != 2*time.Hour || d.Reconcile.OnStart || d.Consumer.Durable != "dbp" {
		t.Errorf("dbprovisioner = %+v", d)
	}
	names := strings.Join(EnvNames(), " ")
	for _, want := range []string{"IAMFLOW_SECRETS_VAULT_AUTH", "IAMFLOW_SECRETS_VAULT_CONFIG_PATH", "IAMFLOW_DBPROVISIONER_RECONCILE_INTERVAL"} {
		if !strings.Contains(names, want) {
			t.Errorf("EnvNames() lacks %s", want)
		}
	}
	if strings.Contains(names, "IAMFLOW_DBPROVISIONER_DATABASES") {
		t.Errorf("EnvNames() lists dbprovisioner.databases, which is file-only")
	}
}
