package ords

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// SeedData is a seed file: roles and users (with grants) added to databases.
// YAML or JSON:
//
//	databases:
//	  - alias: pdb1
//	    roles:
//	      - {name: DBAS, externalName: IAM_GROUP_NAME=dom/dbas}
//	      - {name: APP_READ}
//	    users:
//	      - username: ALICE
//	        externalName: IAM_PRINCIPAL_NAME=dom/alice
//	        accountStatus: OPEN          # or LOCKED; default OPEN
//	        roles: [DBAS]
//	        privileges: [CREATE SESSION]
//	      - {username: APP, created: 2024-01-02T03:04:05Z}   # password user
//
// Names are stored exactly as written (write them upper-case, as unquoted
// identifiers would be); a name already used by a user or role is an error.
type SeedData struct {
	Databases []DatabaseSeed `json:"databases" yaml:"databases"`
}

// DatabaseSeed is what a seed adds to one database.
type DatabaseSeed struct {
	Alias string `json:"alias" yaml:"alias"`
	Roles []Role `json:"roles,omitempty" yaml:"roles,omitempty"`
	Users []User `json:"users,omitempty" yaml:"users,omitempty"`
}

// SeedFile loads a seed file; see Seed.
func (e *Emulator) SeedFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("ords: seed: %w", err)
	}
	if err := e.seedBytes(b); err != nil {
		return fmt.Errorf("%w (file %s)", err, path)
	}
	return nil
}

// Seed reads SeedData as YAML or JSON and loads it with LoadSeed.
func (e *Emulator) Seed(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("ords: seed: %w", err)
	}
	return e.seedBytes(b)
}

func (e *Emulator) seedBytes(b []byte) error {
	var sd SeedData
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sd); err != nil {
			return fmt.Errorf("ords: seed: invalid JSON: %w", err)
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&sd); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("ords: seed: invalid YAML: %w", err)
		}
	}
	return e.LoadSeed(sd)
}

// LoadSeed adds the seed's roles and users to their databases without
// running statements (the statement log is unchanged). Each database's part
// is applied whole or not at all; the first error stops the load.
func (e *Emulator) LoadSeed(sd SeedData) error {
	for i, ds := range sd.Databases {
		db := e.db(ds.Alias)
		if db == nil {
			return fmt.Errorf("ords: seed: databases[%d]: no database with alias %q", i, ds.Alias)
		}
		if err := db.loadSeed(ds); err != nil {
			return fmt.Errorf("ords: seed: databases[%d] (%s): %w", i, ds.Alias, err)
		}
	}
	return nil
}

func (db *database) loadSeed(ds DatabaseSeed) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	existing := map[string]bool{}
	for n := range db.cat.roles {
		existing[n] = true
	}
	if err := checkSeed(ds.Roles, ds.Users, existing); err != nil {
		return err
	}
	next := db.cat.clone()
	if err := next.load(ds.Roles, ds.Users, db.now()); err != nil {
		return err
	}
	db.cat = next
	return nil
}
