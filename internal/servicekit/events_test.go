package servicekit

import (
	"context"
	"strings"
	"testing"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
)

func eventMsg(t *testing.T, id, user string) *bus.Msg {
	t.Helper()
	data, err := event.Marshal(&iamflowv1.IdentityEvent{Id: id, Domain: "prod", Kind: iamflowv1.Kind_KIND_USER,
		Action: iamflowv1.Action_ACTION_UPDATED, Resource: &iamflowv1.Resource{Id: user}})
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Msg{Data: data}
}

// The handler sees each event decoded, recorded as the last event; what is
// no event is terminal, named after the service, and never reaches it.
func TestEventHandler(t *testing.T) {
	k, _ := New("svc", nil, WithAuditWriter(&fakeAuditor{}))
	var seen []string
	h := k.EventHandler(func(_ context.Context, _ *bus.Msg, ev *iamflowv1.IdentityEvent) bus.Result {
		seen = append(seen, ev.GetResource().GetId())
		return bus.Done()
	})
	if res := h(context.Background(), eventMsg(t, "e1", "u1")); !res.IsDone() {
		t.Fatalf("event: %v, want done", res)
	}
	if len(seen) != 1 || seen[0] != "u1" {
		t.Fatalf("handled %v, want [u1]", seen)
	}
	if st := k.Report(context.Background(), k.Status(nil)); st.GetLastEventId() != "e1" {
		t.Fatalf("last event %q, want e1", st.GetLastEventId())
	}
	res := h(context.Background(), &bus.Msg{Data: []byte("\xff")})
	if !res.IsTerminal() || !strings.HasPrefix(res.Err().Error(), "svc: ") || len(seen) != 1 {
		t.Fatalf("undecodable: %v (%v), handled %v; want terminal, named, not handled", res, res.Err(), seen)
	}
}

func TestCoalesceEvents(t *testing.T) {
	key := CoalesceEvents(func(ev *iamflowv1.IdentityEvent) string { return ev.GetResource().GetId() })
	if k := key(eventMsg(t, "e1", "u1")); k != "u1" {
		t.Fatalf("key %q, want u1", k)
	}
	if k := key(&bus.Msg{Data: []byte("\xff")}); k != "" {
		t.Fatalf("undecodable message key %q, want none", k)
	}
}
