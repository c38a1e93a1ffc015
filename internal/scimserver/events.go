package scimserver

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
)

// Event ids are stable: "scim:<source>:<user|group>:<id>:v<version>:<action>"
// and, for a membership, ":<user id>" after it. A request replayed by the
// IdP writes no new version, so its events carry the ids already stored,
// which JetStream's duplicate window deduplicates; past the window a
// duplicate is one more harmless trigger.
func eventID(source string, k kind, id string, version int64, action, member string) string {
	s := "scim:" + source + ":" + kindToken(k) + ":" + id + ":v" + strconv.FormatInt(version, 10) + ":" + action
	if member != "" {
		s += ":" + member
	}
	return s
}

func kindToken(k kind) string {
	if k == kindGroup {
		return "group"
	}
	return "user"
}

var kinds = map[string]iamflowv1.Kind{
	"user": iamflowv1.Kind_KIND_USER, "group": iamflowv1.Kind_KIND_GROUP, "membership": iamflowv1.Kind_KIND_MEMBERSHIP,
}

var actions = map[string]iamflowv1.Action{
	"created": iamflowv1.Action_ACTION_CREATED, "updated": iamflowv1.Action_ACTION_UPDATED,
	"deleted": iamflowv1.Action_ACTION_DELETED, "activated": iamflowv1.Action_ACTION_ACTIVATED,
	"deactivated": iamflowv1.Action_ACTION_DEACTIVATED, "member_added": iamflowv1.Action_ACTION_MEMBER_ADDED,
	"member_removed": iamflowv1.Action_ACTION_MEMBER_REMOVED,
}

// identityEvent is the canonical event of a stored one.
func (s *Server) identityEvent(source string, se storedEvent, now time.Time) *iamflowv1.IdentityEvent {
	k, a := kinds[se.Kind], actions[se.Action]
	e := &iamflowv1.IdentityEvent{
		Id:                se.ID,
		Type:              event.Type(k, a),
		Domain:            source,
		Kind:              k,
		Action:            a,
		Actor:             &iamflowv1.Actor{Name: source + " (SCIM push)", Type: "Client"},
		OccurredAt:        timestamppb.New(se.At),
		ReceivedAt:        timestamppb.New(now),
		Source:            iamflowv1.Source_SOURCE_SCIM_PUSH,
		ChangedAttributes: se.Changed,
	}
	switch k {
	case iamflowv1.Kind_KIND_USER:
		e.Resource = &iamflowv1.Resource{Id: se.ResID, Name: se.ResName, Type: "User"}
	case iamflowv1.Kind_KIND_GROUP:
		e.Resource = &iamflowv1.Resource{Id: se.ResID, Name: se.ResName, Type: "Group"}
	case iamflowv1.Kind_KIND_MEMBERSHIP:
		e.Resource = &iamflowv1.Resource{Id: se.ResID, Name: se.ResName, Type: "Group"}
		e.Related = &iamflowv1.Resource{Id: se.RelID, Name: se.RelName, Type: "User"}
	}
	return e
}

// publish stores the events in IAM_EVENTS and returns when JetStream has
// acknowledged every one (duplicates included).
func (s *Server) publish(ctx context.Context, source string, evs []storedEvent) error {
	if len(evs) == 0 {
		return nil
	}
	if s.publishFault != nil {
		if err := s.publishFault(); err != nil {
			return err
		}
	}
	now := s.now()
	out := make([]bus.OutMsg, 0, len(evs))
	for _, se := range evs {
		e := s.identityEvent(source, se, now)
		if err := event.Validate(e); err != nil {
			return fmt.Errorf("event %s: %w", se.ID, err) // a bug, not bad input
		}
		subject, err := event.Subject(source, e.GetKind(), e.GetAction())
		if err != nil {
			return err
		}
		data, err := event.Marshal(e)
		if err != nil {
			return err
		}
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		msg.Header.Set("Content-Type", event.ContentType)
		msg.Header.Set("Iamflow-Event-Type", e.GetType())
		out = append(out, bus.OutMsg{Msg: msg, ID: e.GetId()})
	}
	pctx, cancel := context.WithTimeout(ctx, s.publishTimeout)
	defer cancel()
	acks, err := s.bus.PublishBatch(pctx, out)
	if err != nil {
		s.metrics.events.WithLabelValues(source, "unavailable").Add(float64(len(out)))
		return err
	}
	for _, a := range acks {
		if a.Duplicate {
			s.metrics.events.WithLabelValues(source, "duplicate").Inc()
		} else {
			s.metrics.events.WithLabelValues(source, "published").Inc()
		}
	}
	return nil
}
