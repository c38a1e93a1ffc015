package identitydomain

import (
	"net/http"
	"strings"
)

// PUT /admin/v1/UserCapabilitiesChanger/{userId} (docs/oci-sources.md §4) sets the user's
// capability flags, which read back in the user's
// urn:ietf:params:scim:schemas:oracle:idcs:extension:capabilities:User
// extension, and selfChange's allowSelfChange. The body is the docs sample:
//
//	{"canUseApiKeys": true, "canUseAuthTokens": false, ...,
//	 "urn:ietf:params:scim:schemas:oracle:idcs:extension:selfChange:User:allowSelfChange": true,
//	 "schemas": ["urn:ietf:params:scim:schemas:oracle:idcs:UserCapabilitiesChanger"]}
//
// (the SDK sends selfChange as a nested object; both forms work). Flags left
// out keep their values; a new user has every flag true (the IDCS default
// for a new user, not stated in docs/oci-sources.md). The answer is the
// UserCapabilitiesChanger resource with every flag's current value. A change
// emits updateusercapabilities with the old and new flags.

var lowerSelfChange = strings.ToLower(SchemaSelfChange)

func (d *Domain) putCapabilities(w http.ResponseWriter, r *request) error {
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if err := checkSchemas(body, SchemaCapChanger); err != nil {
		return err
	}
	caps, self, err := parseCapabilities(body)
	if err != nil {
		return err
	}
	var doc map[string]any
	var version string
	err = d.commit(r, func(tx *txn) error {
		u, err := writeTarget(d.userKind(), r)
		if err != nil {
			return err
		}
		attrs := withCapabilities(u.attrs, caps, self)
		before, after := effectiveCaps(u.attrs), effectiveCaps(attrs)
		u.attrs = attrs
		d.touch(&u.resource, d.actor(r), d.clock.Now())
		added, removed := diffAttrs(before, after)
		if len(added)+len(removed) > 0 {
			tx.emit(change{typ: EventUpdateUserCapabilities, res: userSnap(u), added: added, removed: removed})
		}
		doc = d.capabilitiesDoc(r, u, after)
		version = u.version
		return nil
	})
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(version))
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// parseCapabilities reads a UserCapabilitiesChanger body: the capability
// flags it sets, by their schema names, and selfChange's allowSelfChange
// (nil when not set), given as a nested object or as a full path.
func parseCapabilities(body map[string]any) (caps, self map[string]any, err error) {
	caps = map[string]any{}
	capDefs := userType.ext(strings.ToLower(SchemaCapabilities)).attrs
	for k, v := range body {
		lk := strings.ToLower(k)
		if def := capDefs[lk]; def != nil {
			b, ok := v.(bool)
			if !ok {
				return nil, nil, errInvalidValue("Attribute %s must be a boolean.", def.name)
			}
			caps[def.name] = b
			continue
		}
		switch lk {
		case lowerSelfChange:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, nil, errInvalidValue("Attribute %s must be an object.", SchemaSelfChange)
			}
			if a, ok := m[keyFor(m, "allowSelfChange")]; ok {
				if self, err = allowSelfChange(a); err != nil {
					return nil, nil, err
				}
			}
		case lowerSelfChange + ":allowselfchange":
			if self, err = allowSelfChange(v); err != nil {
				return nil, nil, err
			}
		}
	}
	return caps, self, nil
}

// allowSelfChange returns selfChange's attributes for an allowSelfChange
// value, which must be a boolean.
func allowSelfChange(v any) (map[string]any, error) {
	b, ok := v.(bool)
	if !ok {
		return nil, errInvalidValue("Attribute allowSelfChange must be a boolean.")
	}
	return map[string]any{"allowSelfChange": b}, nil
}

// withCapabilities returns a copy of a user's attributes with the flags in
// caps merged into its capabilities extension and, when self is set, its
// selfChange extension replaced.
func withCapabilities(cur, caps, self map[string]any) map[string]any {
	attrs := make(map[string]any, len(cur)+2)
	for k, v := range cur {
		attrs[k] = v
	}
	if len(caps) > 0 {
		merged := map[string]any{}
		if c, ok := cur[SchemaCapabilities].(map[string]any); ok {
			for k, v := range c {
				merged[k] = v
			}
		}
		for k, v := range caps {
			merged[k] = v
		}
		attrs[SchemaCapabilities] = merged
	}
	if self != nil {
		attrs[SchemaSelfChange] = self
	}
	return attrs
}

// capabilitiesDoc is the UserCapabilitiesChanger resource of u answered to
// a PUT, with every flag's current value (after).
func (d *Domain) capabilitiesDoc(r *request, u *userRec, after map[string]any) map[string]any {
	doc := map[string]any{
		"schemas": []string{SchemaCapChanger},
		"id":      u.id,
		"ocid":    u.ocid,
		"meta": map[string]any{
			"resourceType": "UserCapabilitiesChanger",
			"created":      formatTime(u.created),
			"lastModified": formatTime(u.modified),
			"version":      u.version,
			"location":     r.base + "/admin/v1/UserCapabilitiesChanger/" + u.id,
		},
		"domainOcid":      d.cfg.DomainOCID,
		"compartmentOcid": d.cfg.CompartmentOCID,
		"tenancyOcid":     d.cfg.TenancyOCID,
	}
	for k, v := range after {
		if k == SchemaSelfChange {
			continue
		}
		doc[k] = v
	}
	if sc, ok := u.attrs[SchemaSelfChange].(map[string]any); ok {
		doc[SchemaSelfChange] = sc
	}
	return doc
}

// effectiveCaps returns every capability flag's value (defaults applied) and
// allowSelfChange, for diffing.
func effectiveCaps(attrs map[string]any) map[string]any {
	out := make(map[string]any, len(capabilityNames)+1)
	cur, _ := attrs[SchemaCapabilities].(map[string]any)
	for _, n := range capabilityNames {
		if b, ok := cur[n].(bool); ok {
			out[n] = b
		} else {
			out[n] = true
		}
	}
	if sc, ok := attrs[SchemaSelfChange].(map[string]any); ok {
		if b, ok := sc["allowSelfChange"].(bool); ok {
			out[SchemaSelfChange] = map[string]any{"allowSelfChange": b}
		}
	}
	return out
}
