// Package event holds the helpers around the canonical iamflow.v1.IdentityEvent:
// the subject an event is published on, the tokens for kinds and actions, and
// encoding to and from the bytes stored in JetStream.
//
// Parsing the many shapes OCI delivers lives in services/ingest; this package
// only knows the canonical form.
package event

import (
	"errors"
	"fmt"
	"regexp"

	"google.golang.org/protobuf/proto"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// SubjectPrefix is the first token of every identity event subject.
const SubjectPrefix = "iam.event"

// AllSubjects matches every identity event subject; it is IAM_EVENTS' subject filter.
const AllSubjects = SubjectPrefix + ".>"

// ContentType is the value of the Content-Type header on stored events.
const ContentType = "application/x-protobuf; messageType=iamflow.v1.IdentityEvent"

var domainNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidDomainName reports whether name can be a domain's short name: it is used
// as a NATS subject token, so it is lower-case letters, digits, '-' and '_'.
func ValidDomainName(name string) bool { return domainNameRE.MatchString(name) }

var kindTokens = map[iamflowv1.Kind]string{
	iamflowv1.Kind_KIND_USER:       "user",
	iamflowv1.Kind_KIND_GROUP:      "group",
	iamflowv1.Kind_KIND_MEMBERSHIP: "membership",
}

var actionTokens = map[iamflowv1.Action]string{
	iamflowv1.Action_ACTION_CREATED:              "created",
	iamflowv1.Action_ACTION_UPDATED:              "updated",
	iamflowv1.Action_ACTION_DELETED:              "deleted",
	iamflowv1.Action_ACTION_ACTIVATED:            "activated",
	iamflowv1.Action_ACTION_DEACTIVATED:          "deactivated",
	iamflowv1.Action_ACTION_CAPABILITIES_CHANGED: "capabilities_changed",
	iamflowv1.Action_ACTION_MEMBER_ADDED:         "member_added",
	iamflowv1.Action_ACTION_MEMBER_REMOVED:       "member_removed",
}

// KindToken is the subject token of a kind ("user", "group", "membership"), or "" if it has none.
func KindToken(k iamflowv1.Kind) string { return kindTokens[k] }

// ActionToken is the subject token of an action ("created", "member_added", ...), or "" if it has none.
func ActionToken(a iamflowv1.Action) string { return actionTokens[a] }

// Type is the canonical type of an event of this kind and action, e.g. "membership.member_added".
func Type(k iamflowv1.Kind, a iamflowv1.Action) string { return KindToken(k) + "." + ActionToken(a) }

// Subject is where an event is published: iam.event.<domain>.<kind>.<action>.
func Subject(domain string, k iamflowv1.Kind, a iamflowv1.Action) (string, error) {
	kt, at := KindToken(k), ActionToken(a)
	switch {
	case !ValidDomainName(domain):
		return "", fmt.Errorf("event subject: domain %q is not a valid short name", domain)
	case kt == "":
		return "", fmt.Errorf("event subject: kind %v has no subject token", k)
	case at == "":
		return "", fmt.Errorf("event subject: action %v has no subject token", a)
	}
	return SubjectPrefix + "." + domain + "." + kt + "." + at, nil
}

// SubjectFilter is the subject filter for one domain's events of one kind;
// an empty domain or kind matches any.
func SubjectFilter(domain, kind string) string {
	if domain == "" {
		domain = "*"
	}
	if kind == "" {
		kind = "*"
	}
	return SubjectPrefix + "." + domain + "." + kind + ".*"
}

// Validate checks that an event carries what every consumer relies on.
func Validate(e *iamflowv1.IdentityEvent) error {
	var errs []error
	if e.GetId() == "" {
		errs = append(errs, errors.New("id is empty"))
	}
	if _, err := Subject(e.GetDomain(), e.GetKind(), e.GetAction()); err != nil {
		errs = append(errs, err)
	}
	if e.GetResource().GetId() == "" && e.GetResource().GetOcid() == "" && e.GetResource().GetName() == "" {
		errs = append(errs, errors.New("resource has no id, ocid or name"))
	}
	if e.GetKind() == iamflowv1.Kind_KIND_MEMBERSHIP && e.GetRelated().GetId() == "" && e.GetRelated().GetOcid() == "" && e.GetRelated().GetName() == "" {
		errs = append(errs, errors.New("membership event names no user"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid event %q: %w", e.GetId(), err)
	}
	return nil
}

// Marshal encodes an event for storage.
func Marshal(e *iamflowv1.IdentityEvent) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %q: %w", e.GetId(), err)
	}
	return b, nil
}

// Unmarshal decodes a stored event.
func Unmarshal(b []byte) (*iamflowv1.IdentityEvent, error) {
	e := &iamflowv1.IdentityEvent{}
	if err := proto.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// EntityKey names the entity an event is about, for per-entity coalescing:
// "<domain>/user/<id>", "<domain>/group/<id>" or "<domain>/membership/<group>/<user>".
func EntityKey(e *iamflowv1.IdentityEvent) string {
	ref := func(r *iamflowv1.Resource) string {
		switch {
		case r.GetId() != "":
			return r.GetId()
		case r.GetOcid() != "":
			return r.GetOcid()
		}
		return "name:" + r.GetName()
	}
	k := e.GetDomain() + "/" + KindToken(e.GetKind()) + "/" + ref(e.GetResource())
	if e.GetKind() == iamflowv1.Kind_KIND_MEMBERSHIP {
		k += "/" + ref(e.GetRelated())
	}
	return k
}
