package ingest

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/event"
)

// This file decides which OCI events are identity changes iamflow acts on and
// maps them to the canonical iamflow.v1.IdentityEvent. Field names come from
// docs/oci-sources.md §1 and §2.

// identityPrefix is the namespace of identity event types, lower-cased
// (senders also write com.oraclecloud.identityControlPlane.AddUserToGroup).
const identityPrefix = "com.oraclecloud.identitycontrolplane."

type kindAction struct {
	kind   iamflowv1.Kind
	action iamflowv1.Action
}

var (
	kaUserCreated   = kindAction{iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_CREATED}
	kaUserUpdated   = kindAction{iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_UPDATED}
	kaUserDeleted   = kindAction{iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_DELETED}
	kaUserActivated = kindAction{iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_ACTIVATED}
	kaUserDeact     = kindAction{iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_DEACTIVATED}
	kaUserCaps      = kindAction{iamflowv1.Kind_KIND_USER, iamflowv1.Action_ACTION_CAPABILITIES_CHANGED}
	kaGroupCreated  = kindAction{iamflowv1.Kind_KIND_GROUP, iamflowv1.Action_ACTION_CREATED}
	kaGroupUpdated  = kindAction{iamflowv1.Kind_KIND_GROUP, iamflowv1.Action_ACTION_UPDATED}
	kaGroupDeleted  = kindAction{iamflowv1.Kind_KIND_GROUP, iamflowv1.Action_ACTION_DELETED}
	kaMemberAdded   = kindAction{iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_ADDED}
	kaMemberRemoved = kindAction{iamflowv1.Kind_KIND_MEMBERSHIP, iamflowv1.Action_ACTION_MEMBER_REMOVED}
)

// byAuditEventID maps identity domain audit eventIds (additionalDetails.eventId).
var byAuditEventID = map[string]kindAction{
	"admin.user.create.success":         kaUserCreated,
	"admin.user.update.success":         kaUserUpdated,
	"admin.user.delete.success":         kaUserDeleted,
	"admin.user.activated.success":      kaUserActivated,
	"admin.user.deactivated.success":    kaUserDeact,
	"admin.group.create.success":        kaGroupCreated,
	"admin.group.update.success":        kaGroupUpdated,
	"admin.group.delete.success":        kaGroupDeleted,
	"admin.group.add.member.success":    kaMemberAdded,
	"admin.group.remove.member.success": kaMemberRemoved,
}

// byOperation maps the operation named by an event type (after
// identityPrefix) or by an audit record's data.eventName, lower-cased.
var byOperation = map[string]kindAction{
	"createuser":             kaUserCreated,
	"createfederateduser":    kaUserCreated,
	"updateuser":             kaUserUpdated,
	"updateuserstate":        kaUserUpdated,
	"updatemyrecoveryemail":  kaUserUpdated,
	"deleteuser":             kaUserDeleted,
	"activateuser":           kaUserActivated,
	"deactivateuser":         kaUserDeact,
	"updateusercapabilities": kaUserCaps,
	"creategroup":            kaGroupCreated,
	"updategroup":            kaGroupUpdated,
	"deletegroup":            kaGroupDeleted,
	"addusertogroup":         kaMemberAdded,
	"removeuserfromgroup":    kaMemberRemoved,
}

// classification is what classify decided about one event.
type classification struct {
	kindAction
	ok          bool   // an identity change iamflow acts on
	unknownType string // when !ok: what to report as Unknown.Type
}

// classify decides what an event is, case-insensitively. The audit eventId is
// preferred when it is recognised (it is more specific), except that a
// generic "updated" eventId yields to an event type that names a more
// specific change of the same entity (updateusercapabilities, activateuser,
// addusertogroup, ...). A ".failure" eventId is never an identity change: the
// change did not happen. data.eventName is consulted only when the type is
// absent or in an identity namespace.
func classify(eventType, auditEventID, eventName string) classification {
	lt := strings.ToLower(strings.TrimSpace(eventType))
	la := strings.ToLower(strings.TrimSpace(auditEventID))

	var fromType kindAction
	typeOK := false
	if op, ok := strings.CutPrefix(lt, identityPrefix); ok {
		fromType, typeOK = byOperation[op]
	}
	if !typeOK && eventName != "" && (lt == "" || strings.HasPrefix(lt, "com.oraclecloud.identity")) {
		fromType, typeOK = byOperation[strings.ToLower(strings.TrimSpace(eventName))]
	}

	var fromID kindAction
	idOK := false
	if la != "" {
		if strings.HasSuffix(la, ".failure") {
			return classification{unknownType: auditEventID}
		}
		fromID, idOK = byAuditEventID[la]
	}

	switch {
	case idOK && typeOK && fromID.action == iamflowv1.Action_ACTION_UPDATED && fromType.action != iamflowv1.Action_ACTION_UPDATED &&
		(fromType.kind == fromID.kind || (fromID.kind == iamflowv1.Kind_KIND_GROUP && fromType.kind == iamflowv1.Kind_KIND_MEMBERSHIP)):
		return classification{kindAction: fromType, ok: true}
	case idOK:
		return classification{kindAction: fromID, ok: true}
	case typeOK:
		return classification{kindAction: fromType, ok: true}
	}
	c := classification{unknownType: eventType}
	switch {
	case strings.TrimSpace(eventType) != "":
	case auditEventID != "":
		c.unknownType = auditEventID
	default:
		c.unknownType = eventName
	}
	return c
}

// details is data.additionalDetails of an identity event.
type ociDetails struct {
	EventID              rawJSON `json:"eventId"`
	AdminResourceID      rawJSON `json:"adminResourceId"`
	AdminResourceName    rawJSON `json:"adminResourceName"`
	AdminResourceType    rawJSON `json:"adminResourceType"`
	AdminResourceOcid    rawJSON `json:"adminResourceOcid"`
	AdminRefResourceID   rawJSON `json:"adminRefResourceId"`
	AdminRefResourceName rawJSON `json:"adminRefResourceName"`
	AdminRefResourceType rawJSON `json:"adminRefResourceType"`
	AdminRefResourceOcid rawJSON `json:"adminRefResourceOcid"`
	AdminValuesAdded     rawJSON `json:"adminValuesAdded"`
	AdminValuesRemoved   rawJSON `json:"adminValuesRemoved"`
	ActorID              rawJSON `json:"actorId"`
	ActorOcid            rawJSON `json:"actorOcid"`
	ActorName            rawJSON `json:"actorName"`
	ActorDisplayName     rawJSON `json:"actorDisplayName"`
	ActorType            rawJSON `json:"actorType"`
	DomainName           rawJSON `json:"domainName"`
	DomainDisplayName    rawJSON `json:"domainDisplayName"`
	DomainID             rawJSON `json:"domainId"`
	DomainURL            rawJSON `json:"domainUrl"`
	// Legacy (non-domain) IAM payloads name the user and group by OCID.
	UserID  rawJSON `json:"userId"`
	GroupID rawJSON `json:"groupId"`
}

// auditIdentity is data.identity of an OCI audit record.
type auditIdentity struct {
	PrincipalID   rawJSON `json:"principalId"`
	PrincipalName rawJSON `json:"principalName"`
}

// scimMember is one element of adminValuesAdded/Removed.members.
type scimMember struct {
	Value   rawJSON `json:"value"`
	Display rawJSON `json:"display"`
	Name    rawJSON `json:"name"`
	Type    rawJSON `json:"type"`
	Ocid    rawJSON `json:"ocid"`
}

// bookkeeping attributes change with every write; they are not reported as
// changed attributes (and members changes become membership events).
// Keys are lower-case (SCIM attribute names are case-insensitive).
// idcsCreatedBy is set once at creation, like meta.created.
var bookkeeping = map[string]bool{
	"meta": true, "schemas": true, "id": true, "ocid": true,
	"idcslastmodifiedby": true, "idcslastmodifiedtime": true, "idcspreventedoperations": true,
	"idcscreatedby": true, "members": true,
}

// fieldReader reads typed fields and keeps the first error.
type fieldReader struct {
	err *parseError
	dec jsonDecoder
}

func (r *fieldReader) str(raw rawJSON, at loc) string {
	if r.err != nil {
		return ""
	}
	s, err := getString(raw, at)
	if err != nil {
		r.err = err
		return ""
	}
	return strings.TrimSpace(s)
}

// values reads adminValuesAdded/Removed: an object, or a string holding a
// JSON object. A string that is not a JSON object yields nothing (not an
// error): the values are a hint.
func (r *fieldReader) values(raw rawJSON, at loc) map[string]rawJSON {
	if r.err != nil {
		return nil
	}
	var src []byte
	switch k := jsonKindOf(raw); k {
	case kindAbsent, kindNull:
		return nil
	case kindObject:
		src = raw
	case kindString:
		src = []byte(strings.TrimSpace(decodeString(raw)))
		// Not a part of the body, so checked here: the fast path reads
		// only valid JSON. What is not valid yields nothing, as before.
		if len(src) == 0 || src[0] != '{' || !validJSON(src) {
			return nil
		}
	default:
		path := at.String()
		r.err = newParseError(codeWrongType, path, "%s is %s, want an object or a JSON-encoded string", pathLast(path), k)
		return nil
	}
	m, err := r.dec.object(src)
	if err != nil {
		return nil
	}
	return m
}

type memberRef struct {
	res *iamflowv1.Resource
	key string // value, ocid or name: what makes the derived id distinct
}

// members reads the members attribute of adminValuesAdded/Removed.
func (r *fieldReader) members(vals map[string]rawJSON, at loc) []memberRef {
	if r.err != nil {
		return nil
	}
	raw := memberFold(vals, "members")
	switch k := jsonKindOf(raw); k {
	case kindAbsent, kindNull:
		return nil
	case kindArray:
	default:
		r.err = newParseError(codeWrongType, pathJoin(at.String(), "members"), "members is %s, want an array", k)
		return nil
	}
	path := pathJoin(at.String(), "members")
	elems, err := r.dec.array(raw)
	if err != nil {
		r.err = jsonError(path, err)
		return nil
	}
	var out []memberRef
	seen := make(map[string]bool, len(elems))
	for i, el := range elems {
		ep := fmt.Sprintf("%s[%d]", path, i)
		res := &iamflowv1.Resource{Type: "User"}
		switch k := jsonKindOf(el); k {
		case kindString:
			res.Id = strings.TrimSpace(decodeString(el))
		case kindObject:
			var m scimMember
			if !r.dec.fast || m.decodeFast(el, 0) < 0 {
				if err := decodeCopy(el, &m); err != nil {
					r.err = jsonError(ep, err)
					return nil
				}
			}
			res.Id = r.str(m.Value, loc{ep, "value"})
			res.Ocid = r.str(m.Ocid, loc{ep, "ocid"})
			res.Name = r.str(m.Display, loc{ep, "display"})
			if res.Name == "" {
				res.Name = r.str(m.Name, loc{ep, "name"})
			}
			if strings.EqualFold(r.str(m.Type, loc{ep, "type"}), "Group") {
				res.Type = "Group"
			}
			if r.err != nil {
				return nil
			}
		default:
			r.err = newParseError(codeWrongType, ep, "%s is %s, want an object {value, display, type}", pathLast(ep), k)
			return nil
		}
		key := firstSet(res.Id, res.Ocid, res.Name)
		if key == "" {
			r.err = newParseError(codeMissingField, ep, "%s names no user: want value, ocid, display or name", pathLast(ep))
			return nil
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, memberRef{res: res, key: key})
	}
	return out
}

// changedAttributes is the sorted union of the non-bookkeeping keys.
func changedAttributes(maps ...map[string]rawJSON) []string {
	var out []string
	for _, m := range maps {
		for k := range m {
			if k == "" || bookkeeping[strings.ToLower(k)] {
				continue
			}
			out = append(out, strings.ToValidUTF8(k, "\uFFFD"))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// scimMeta is the meta attribute of a SCIM resource.
type scimMeta struct {
	Location rawJSON `json:"location"`
}

// memberFold is the member of vals named name, ignoring case as SCIM
// attribute names are: the one spelt exactly so if there is one, else the
// first of the others in sorted order, so that a body with both "Members"
// and "MEMBERS" always reads the same one (map order would not).
func memberFold(vals map[string]rawJSON, name string) rawJSON {
	if v, ok := vals[name]; ok {
		return v
	}
	var (
		key   string
		found rawJSON
		ok    bool
	)
	for k, v := range vals {
		if strings.EqualFold(k, name) && (!ok || k < key) {
			key, found, ok = k, v, true
		}
	}
	return found
}

// metaLocationOrigin is scheme://host of meta.location in a SCIM resource,
// which is the domain URL.
func metaLocationOrigin(dec jsonDecoder, vals map[string]rawJSON) string {
	meta := memberFold(vals, "meta")
	if jsonKindOf(meta) != kindObject {
		return ""
	}
	var m scimMeta
	if (!dec.fast || m.decodeFast(meta, 0) < 0) && decodeCopy(meta, &m) != nil || jsonKindOf(m.Location) != kindString {
		return ""
	}
	return urlOrigin(decodeString(m.Location))
}

// urlOrigin is scheme://host[:port] of an http(s) URL, or "".
func urlOrigin(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func isOCID(s string) bool {
	return len(s) > 6 && strings.EqualFold(s[:6], "ocid1.")
}

// ocidType is the resource type an OCID names: "user" for ocid1.user.oc1..x.
func ocidType(s string) string {
	t, _, _ := strings.Cut(s[6:], ".")
	return strings.ToLower(t)
}

// setRef fills the Ocid (if v is an OCID of resource type want) or the Id
// (if v is not an OCID) of r, if that field is still empty. An OCID of any
// other type (a membership, a domain, an instance) is not this resource's.
func setRef(r *iamflowv1.Resource, v, want string) {
	switch {
	case v == "":
	case isOCID(v):
		if r.Ocid == "" && ocidType(v) == want {
			r.Ocid = v
		}
	case r.Id == "":
		r.Id = v
	}
}

func emptyRes(r *iamflowv1.Resource) bool {
	return r.GetId() == "" && r.GetOcid() == "" && r.GetName() == ""
}

func firstSet(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// occurredAt parses eventTime/time; missing or unparsable is nil, not an error.
func occurredAt(raw rawJSON) *timestamppb.Timestamp {
	if jsonKindOf(raw) != kindString {
		return nil
	}
	s := strings.TrimSpace(decodeString(raw))
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			if ts := timestamppb.New(t); ts.IsValid() {
				return ts
			}
			return nil
		}
	}
	return nil
}

// identityEvents maps one classified identity event to canonical events: one,
// or several for a group update that changed members. It reads the fields
// that name what changed, makes the events for the event's kind, and checks
// that every event id can be a message id.
func (p *batchParser) identityEvents(e *ociEntry, c classification) ([]*iamflowv1.IdentityEvent, *parseError) {
	var f identityFields // on the stack: nothing keeps it
	if perr := readIdentityFields(e, &f); perr != nil {
		return nil, perr
	}
	mk := eventMaker{now: p.now, baseID: e.eventID(), occurred: occurredAt(e.timeRaw),
		eventType: e.eventType, auditEventID: e.auditEventID, source: e.source,
		domainName: f.domainName, domainID: f.domainID, domainURL: f.domainURL, actor: f.actor}
	var out []*iamflowv1.IdentityEvent
	var perr *parseError
	switch c.kind {
	case iamflowv1.Kind_KIND_USER, iamflowv1.Kind_KIND_GROUP:
		out, perr = f.resourceEvents(mk, c)
	case iamflowv1.Kind_KIND_MEMBERSHIP:
		out, perr = f.membershipEvents(mk, c)
	}
	if perr != nil {
		return nil, perr
	}
	if perr := checkEventIDs(e, out); perr != nil {
		return nil, perr
	}
	return out, nil
}

// identityFields are what an identity event's data.additionalDetails (and
// data) say: the resource changed and the one it refers to, the legacy
// OCIDs, who changed it, in which domain, and the values added and removed.
type identityFields struct {
	r  fieldReader // the first error reading any field
	dp string      // the path of data.additionalDetails

	primary, ref            *iamflowv1.Resource
	primaryType, refType    string
	legacyUser, legacyGroup string
	actor                   *iamflowv1.Actor // nil when nothing names the actor

	domainName, domainID, domainURL string
	added, removed                  map[string]rawJSON
	dataResID, dataResName          string
}

// at is the location of a field of data.additionalDetails.
func (f *identityFields) at(field string) loc { return loc{f.dp, field} }

// readIdentityFields reads an identity event's fields, in the order their
// errors are reported.
func readIdentityFields(e *ociEntry, f *identityFields) *parseError {
	*f = identityFields{dp: e.at("data.additionalDetails"), r: fieldReader{dec: e.dec}}
	r, d := &f.r, &e.data.AdditionalDetails
	f.primary = &iamflowv1.Resource{
		Id:   r.str(d.AdminResourceID, f.at("adminResourceId")),
		Name: r.str(d.AdminResourceName, f.at("adminResourceName")),
		Ocid: r.str(d.AdminResourceOcid, f.at("adminResourceOcid")),
	}
	f.primaryType = r.str(d.AdminResourceType, f.at("adminResourceType"))
	f.ref = &iamflowv1.Resource{
		Id:   r.str(d.AdminRefResourceID, f.at("adminRefResourceId")),
		Name: r.str(d.AdminRefResourceName, f.at("adminRefResourceName")),
		Ocid: r.str(d.AdminRefResourceOcid, f.at("adminRefResourceOcid")),
	}
	f.refType = r.str(d.AdminRefResourceType, f.at("adminRefResourceType"))
	f.legacyUser = r.str(d.UserID, f.at("userId"))
	f.legacyGroup = r.str(d.GroupID, f.at("groupId"))
	if perr := f.readActor(e); perr != nil {
		return perr
	}
	f.readDomain(e)
	f.dataResID = r.str(e.data.ResourceID, loc{e.path, "data.resourceId"})
	f.dataResName = r.str(e.data.ResourceName, loc{e.path, "data.resourceName"})
	if r.err != nil {
		return r.err
	}
	if f.actor.Id == "" && f.actor.Name == "" && f.actor.Type == "" {
		f.actor = nil
	}
	return nil
}

// readActor reads who made the change: additionalDetails' actor fields,
// then the audit record's data.identity for what they leave out.
func (f *identityFields) readActor(e *ociEntry) *parseError {
	r, d := &f.r, &e.data.AdditionalDetails
	f.actor = &iamflowv1.Actor{
		Id:   firstSet(r.str(d.ActorID, f.at("actorId")), r.str(d.ActorOcid, f.at("actorOcid"))),
		Name: firstSet(r.str(d.ActorName, f.at("actorName")), r.str(d.ActorDisplayName, f.at("actorDisplayName"))),
		Type: r.str(d.ActorType, f.at("actorType")),
	}
	switch k := jsonKindOf(e.data.Identity); k {
	case kindAbsent, kindNull:
	case kindObject:
		var id auditIdentity
		if !e.dec.fast || id.decodeFast(e.data.Identity, 0) < 0 {
			if err := decodeCopy(e.data.Identity, &id); err != nil {
				return jsonError(e.at("data.identity"), err)
			}
		}
		if f.actor.Id == "" {
			f.actor.Id = r.str(id.PrincipalID, loc{e.path, "data.identity.principalId"})
		}
		if f.actor.Name == "" {
			f.actor.Name = r.str(id.PrincipalName, loc{e.path, "data.identity.principalName"})
		}
	default:
		return newParseError(codeWrongType, e.at("data.identity"), "identity is %s, want an object", k)
	}
	return nil
}

// readDomain reads the domain the change was made in and the values added
// and removed; the domain's URL, when not given, is the origin of a value's
// meta.location.
func (f *identityFields) readDomain(e *ociEntry) {
	r, d := &f.r, &e.data.AdditionalDetails
	f.domainName = firstSet(r.str(d.DomainName, f.at("domainName")), r.str(d.DomainDisplayName, f.at("domainDisplayName")))
	f.domainID = r.str(d.DomainID, f.at("domainId"))
	f.domainURL = r.str(d.DomainURL, f.at("domainUrl"))
	if o := urlOrigin(f.domainURL); o != "" {
		f.domainURL = o
	}
	f.added = r.values(d.AdminValuesAdded, f.at("adminValuesAdded"))
	f.removed = r.values(d.AdminValuesRemoved, f.at("adminValuesRemoved"))
	if f.domainURL == "" {
		f.domainURL = firstSet(metaLocationOrigin(r.dec, f.added), metaLocationOrigin(r.dec, f.removed))
	}
}

// eventMaker makes the canonical events of one OCI entry: what they share
// (the entry's ids, domain, actor and times) and what each adds.
type eventMaker struct {
	now      time.Time
	baseID   string
	occurred *timestamppb.Timestamp
	// What every event of the entry carries, copied out of the entry and
	// its fields: holding pointers to them would move both to the heap
	// (escape analysis follows a struct as a whole, and the strings go
	// into the events).
	eventType, auditEventID         string
	domainName, domainID, domainURL string
	source                          iamflowv1.Source
	actor                           *iamflowv1.Actor
}

// event is one canonical event of the entry.
func (m eventMaker) event(ka kindAction, id string, res, related *iamflowv1.Resource, attrs []string) *iamflowv1.IdentityEvent {
	ev := &iamflowv1.IdentityEvent{
		Id:                id,
		Type:              event.Type(ka.kind, ka.action),
		Kind:              ka.kind,
		Action:            ka.action,
		Resource:          res,
		Related:           related,
		ReceivedAt:        timestamppb.New(m.now),
		OciEventType:      m.eventType,
		OciAuditEventId:   m.auditEventID,
		OciDomainName:     m.domainName,
		OciDomainId:       m.domainID,
		OciDomainUrl:      m.domainURL,
		Source:            m.source,
		ChangedAttributes: attrs,
	}
	if a := m.actor; a != nil {
		ev.Actor = &iamflowv1.Actor{Id: a.Id, Name: a.Name, Type: a.Type}
	}
	if m.occurred != nil {
		ev.OccurredAt = &timestamppb.Timestamp{Seconds: m.occurred.Seconds, Nanos: m.occurred.Nanos}
	}
	return ev
}

// cloneResource is a copy of r, for events that must not share it.
func cloneResource(r *iamflowv1.Resource) *iamflowv1.Resource {
	return &iamflowv1.Resource{Id: r.Id, Ocid: r.Ocid, Name: r.Name, Type: r.Type}
}

// resourceEvents are the events of a user or group change. A group update
// that changed members is, for iamflow, one membership change per member,
// plus a group update only if some other attribute changed too.
func (f *identityFields) resourceEvents(mk eventMaker, c classification) ([]*iamflowv1.IdentityEvent, *parseError) {
	res := f.primary
	legacy, ocidKind := f.legacyUser, "user"
	res.Type = "User"
	if c.kind == iamflowv1.Kind_KIND_GROUP {
		legacy, ocidKind, res.Type = f.legacyGroup, "group", "Group"
	}
	// Fall back, field by field, to the legacy OCID and to data.resourceId
	// and data.resourceName.
	setRef(res, legacy, ocidKind)
	setRef(res, f.dataResID, ocidKind)
	if res.Name == "" {
		res.Name = f.dataResName
	}
	if emptyRes(res) {
		noun := strings.ToLower(res.Type)
		return nil, newParseError(codeMissingField, f.at("adminResourceId").String(),
			"adminResourceId is missing: a %s event must name its %s (additionalDetails.adminResourceId, adminResourceName, adminResourceOcid or %sId, or data.resourceId or data.resourceName)",
			event.Type(c.kind, c.action), noun, noun)
	}
	attrs := changedAttributes(f.added, f.removed)
	if c.kindAction != kaGroupUpdated {
		return []*iamflowv1.IdentityEvent{mk.event(c.kindAction, mk.baseID, res, nil, attrs)}, nil
	}
	add := f.r.members(f.added, f.at("adminValuesAdded"))
	rem := f.r.members(f.removed, f.at("adminValuesRemoved"))
	if f.r.err != nil {
		return nil, f.r.err
	}
	var out []*iamflowv1.IdentityEvent
	if len(add)+len(rem) == 0 || len(attrs) > 0 {
		out = append(out, mk.event(kaGroupUpdated, mk.baseID, res, nil, attrs))
	}
	for _, m := range add {
		out = append(out, mk.event(kaMemberAdded, mk.baseID+"/member_added/"+m.key, cloneResource(res), m.res, nil))
	}
	for _, m := range rem {
		out = append(out, mk.event(kaMemberRemoved, mk.baseID+"/member_removed/"+m.key, cloneResource(res), m.res, nil))
	}
	return out, nil
}

// membershipEvents are the events of a membership change: the group and
// the user it names, or, when it names no user, one event per member in
// the values added or removed.
func (f *identityFields) membershipEvents(mk eventMaker, c classification) ([]*iamflowv1.IdentityEvent, *parseError) {
	group, user := f.primary, f.ref
	if strings.EqualFold(f.primaryType, "User") && strings.EqualFold(f.refType, "Group") {
		group, user = user, group
	}
	group.Type, user.Type = "Group", "User"
	setRef(group, f.legacyGroup, "group")
	setRef(user, f.legacyUser, "user")
	if isOCID(f.dataResID) {
		// Only a group OCID: data.resourceId of a membership event may
		// also name the membership itself (ocid1.groupmembership...).
		setRef(group, f.dataResID, "group")
	}
	if emptyRes(group) {
		return nil, newParseError(codeMissingField, f.at("adminResourceId").String(),
			"adminResourceId is missing: a %s event must name its group (additionalDetails.adminResourceId, adminResourceName, adminResourceOcid or groupId)", event.Type(c.kind, c.action))
	}
	if !emptyRes(user) {
		return []*iamflowv1.IdentityEvent{mk.event(c.kindAction, mk.baseID, group, user, nil)}, nil
	}
	// No adminRefResource: the members list of the change, if any.
	vals, valsField, token := f.added, "adminValuesAdded", "/member_added/"
	if c.kindAction == kaMemberRemoved {
		vals, valsField, token = f.removed, "adminValuesRemoved", "/member_removed/"
	}
	ms := f.r.members(vals, f.at(valsField))
	if f.r.err != nil {
		return nil, f.r.err
	}
	if len(ms) == 0 {
		return nil, newParseError(codeMissingField, f.at("adminRefResourceId").String(),
			"adminRefResourceId is missing: a %s event must name its user (additionalDetails.adminRefResourceId, adminRefResourceName, userId, or members in %s)", event.Type(c.kind, c.action), valsField)
	}
	if len(ms) == 1 {
		return []*iamflowv1.IdentityEvent{mk.event(c.kindAction, mk.baseID, group, ms[0].res, nil)}, nil
	}
	out := make([]*iamflowv1.IdentityEvent, 0, len(ms))
	for _, m := range ms {
		out = append(out, mk.event(c.kindAction, mk.baseID+token+m.key, cloneResource(group), m.res, nil))
	}
	return out, nil
}

// checkEventIDs refuses an entry whose event ids contain a control
// character: they cannot be message ids.
func checkEventIDs(e *ociEntry, out []*iamflowv1.IdentityEvent) *parseError {
	for _, ev := range out {
		if i := strings.IndexFunc(ev.Id, isControlRune); i >= 0 {
			field := e.idField
			if field == "" {
				field = "id"
			}
			return newParseError(codeWrongType, e.at(field), "%s gives event id %q, which contains a control character and cannot be a message id", field, ev.Id)
		}
	}
	return nil
}

func isControlRune(r rune) bool { return r < 0x20 || r == 0x7f }
