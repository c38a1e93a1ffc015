package identitydomain

import (
	"encoding/json"
	"strings"
)

// Event types (docs/oci-sources.md §2): the lower-case com.oraclecloud.identitycontrolplane.* names.
const (
	EventCreateUser             = "com.oraclecloud.identitycontrolplane.createuser"
	EventUpdateUser             = "com.oraclecloud.identitycontrolplane.updateuser"
	EventDeleteUser             = "com.oraclecloud.identitycontrolplane.deleteuser"
	EventActivateUser           = "com.oraclecloud.identitycontrolplane.activateuser"
	EventDeactivateUser         = "com.oraclecloud.identitycontrolplane.deactivateuser"
	EventUpdateUserCapabilities = "com.oraclecloud.identitycontrolplane.updateusercapabilities"
	EventCreateGroup            = "com.oraclecloud.identitycontrolplane.creategroup"
	EventUpdateGroup            = "com.oraclecloud.identitycontrolplane.updategroup"
	EventDeleteGroup            = "com.oraclecloud.identitycontrolplane.deletegroup"
	EventAddUserToGroup         = "com.oraclecloud.identitycontrolplane.addusertogroup"
	EventRemoveUserFromGroup    = "com.oraclecloud.identitycontrolplane.removeuserfromgroup"
)

// eventIDs are the additionalDetails.eventId of each type. All but
// admin.user.capabilities.update.success are documented (docs/oci-sources.md §2); that one
// is the emulator's guess in the same pattern.
var eventIDs = map[string]string{
	EventCreateUser:             "admin.user.create.success",
	EventUpdateUser:             "admin.user.update.success",
	EventDeleteUser:             "admin.user.delete.success",
	EventActivateUser:           "admin.user.activated.success",
	EventDeactivateUser:         "admin.user.deactivated.success",
	EventUpdateUserCapabilities: "admin.user.capabilities.update.success",
	EventCreateGroup:            "admin.group.create.success",
	EventUpdateGroup:            "admin.group.update.success",
	EventDeleteGroup:            "admin.group.delete.success",
	EventAddUserToGroup:         "admin.group.add.member.success",
	EventRemoveUserFromGroup:    "admin.group.remove.member.success",
}

// Event is the OCI Events message a change produces: a CloudEvents 0.1
// envelope (docs/oci-sources.md §2). No verbatim identity-domain sample is published; the
// field names come from the Events envelope reference and from consumer code.
// Emulator choices, all marked (inferred) in docs/oci-sources.md or absent from it:
// source is "identitycontrolplane"; data.resourceId is the resource's OCID and
// data.resourceName its userName or displayName; for membership events the
// resource is the group and the ref resource the user; actorType is "Client"
// and actorId/actorName are the OAuth client's id and name.
type Event struct {
	EventType          string          `json:"eventType"`
	CloudEventsVersion string          `json:"cloudEventsVersion"`
	EventTypeVersion   string          `json:"eventTypeVersion"`
	Source             string          `json:"source"`
	EventID            string          `json:"eventID"`
	EventTime          string          `json:"eventTime"`
	ContentType        string          `json:"contentType"`
	Extensions         EventExtensions `json:"extensions"`
	Data               EventData       `json:"data"`
}

// EventExtensions are the envelope's CloudEvents extensions.
type EventExtensions struct {
	CompartmentID string `json:"compartmentId"`
}

// EventData is the envelope's payload.
type EventData struct {
	CompartmentID      string                    `json:"compartmentId"`
	CompartmentName    string                    `json:"compartmentName"`
	ResourceName       string                    `json:"resourceName"`
	ResourceID         string                    `json:"resourceId"`
	AvailabilityDomain *string                   `json:"availabilityDomain"`
	FreeformTags       map[string]string         `json:"freeformTags"`
	DefinedTags        map[string]map[string]any `json:"definedTags"`
	AdditionalDetails  EventDetails              `json:"additionalDetails"`
}

// EventDetails is data.additionalDetails of an identity-domain event.
type EventDetails struct {
	EventID              string `json:"eventId"`
	DomainID             string `json:"domainId"`
	DomainName           string `json:"domainName"`
	DomainDisplayName    string `json:"domainDisplayName"`
	ActorID              string `json:"actorId"`
	ActorName            string `json:"actorName"`
	ActorDisplayName     string `json:"actorDisplayName"`
	ActorType            string `json:"actorType"`
	ClientIP             string `json:"clientIp,omitempty"`
	ECID                 string `json:"ecId,omitempty"`
	AdminResourceID      string `json:"adminResourceId"`
	AdminResourceName    string `json:"adminResourceName"`
	AdminResourceType    string `json:"adminResourceType"`
	AdminResourceOCID    string `json:"adminResourceOcid,omitempty"`
	AdminRefResourceID   string `json:"adminRefResourceId,omitempty"`
	AdminRefResourceName string `json:"adminRefResourceName,omitempty"`
	AdminRefResourceType string `json:"adminRefResourceType,omitempty"`
	// AdminValuesAdded and AdminValuesRemoved are objects, or JSON-encoded
	// strings when Config.EventValuesAsString is set.
	AdminValuesAdded   any `json:"adminValuesAdded,omitempty"`
	AdminValuesRemoved any `json:"adminValuesRemoved,omitempty"`
}

// resSnap identifies a resource in an event.
type resSnap struct {
	id, ocid, name, kind string
}

func userSnap(u *userRec) resSnap {
	return resSnap{id: u.id, ocid: u.ocid, name: u.userName(), kind: "User"}
}

func groupSnap(g *groupRec) resSnap {
	return resSnap{id: g.id, ocid: g.ocid, name: g.displayName(), kind: "Group"}
}

// change is one event to emit, built while the store is locked.
type change struct {
	typ            string
	res            resSnap
	ref            *resSnap
	added, removed map[string]any
}

// buildEvent renders a change as the Events message.
func (d *Domain) buildEvent(c change, r *request) []byte {
	actorID, actorName := "", ""
	if r.client != nil {
		actorID, actorName = r.client.ID, r.client.Name
	}
	ev := Event{
		EventType:          c.typ,
		CloudEventsVersion: "0.1",
		EventTypeVersion:   "2.0",
		Source:             "identitycontrolplane",
		EventID:            d.ids.uuid(),
		EventTime:          formatTime(d.clock.Now()),
		ContentType:        "application/json",
		Extensions:         EventExtensions{CompartmentID: d.cfg.CompartmentOCID},
		Data: EventData{
			CompartmentID:   d.cfg.CompartmentOCID,
			CompartmentName: d.cfg.CompartmentName,
			ResourceName:    c.res.name,
			ResourceID:      c.res.ocid,
			FreeformTags:    map[string]string{},
			DefinedTags:     map[string]map[string]any{},
			AdditionalDetails: EventDetails{
				EventID:           eventIDs[c.typ],
				DomainID:          d.cfg.DomainID,
				DomainName:        d.cfg.DisplayName,
				DomainDisplayName: d.cfg.DisplayName,
				ActorID:           actorID,
				ActorName:         actorName,
				ActorDisplayName:  actorName,
				ActorType:         "Client",
				ClientIP:          clientIP(r.Request),
				ECID:              r.ecid,
				AdminResourceID:   c.res.id,
				AdminResourceName: c.res.name,
				AdminResourceType: c.res.kind,
				AdminResourceOCID: c.res.ocid,
			},
		},
	}
	det := &ev.Data.AdditionalDetails
	if c.ref != nil {
		det.AdminRefResourceID, det.AdminRefResourceName, det.AdminRefResourceType = c.ref.id, c.ref.name, c.ref.kind
	}
	det.AdminValuesAdded = d.eventValues(c.added)
	det.AdminValuesRemoved = d.eventValues(c.removed)
	b, err := json.Marshal(ev)
	if err != nil { // cannot happen: every value is JSON
		d.log.Error("marshal event", "type", c.typ, "err", err)
	}
	return b
}

func (d *Domain) eventValues(m map[string]any) any {
	if len(m) == 0 {
		return nil
	}
	if !d.cfg.EventValuesAsString {
		return m
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// diffAttrs lists the attributes that differ between two attribute maps: the
// new values in added and the old ones in removed. Extension objects are
// compared attribute by attribute.
func diffAttrs(old, cur map[string]any) (added, removed map[string]any) {
	added, removed = map[string]any{}, map[string]any{}
	for k, nv := range cur {
		ov, ok := old[k]
		if strings.HasPrefix(strings.ToLower(k), "urn:") {
			om, _ := ov.(map[string]any)
			nm, _ := nv.(map[string]any)
			if om != nil && nm != nil {
				a, r := diffAttrs(om, nm)
				if len(a) > 0 {
					added[k] = a
				}
				if len(r) > 0 {
					removed[k] = r
				}
				continue
			}
		}
		if !ok {
			added[k] = nv
		} else if !equalJSON(ov, nv) {
			added[k] = nv
			removed[k] = ov
		}
	}
	for k, ov := range old {
		if _, ok := cur[k]; !ok {
			removed[k] = ov
		}
	}
	delete(added, "password")
	delete(removed, "password")
	return added, removed
}
