package servicestatus

import (
	"context"
	"errors"
	"testing"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
)

func TestLastFillsOnlyWhatWasSeen(t *testing.T) {
	var l Last
	st := &iamflowv1.ServiceStatus{}
	l.Fill(st)
	if st.LastEventId != "" || st.LastEventTime != nil || st.LastError != "" || st.LastErrorTime != nil {
		t.Fatalf("empty Last filled %v", st)
	}
	at := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	l.Event("ev-1", at)
	l.Error(errors.New("domain hub unavailable"), at.Add(time.Second))
	l.Fill(st)
	if st.LastEventId != "ev-1" || !st.LastEventTime.AsTime().Equal(at) || st.LastError != "domain hub unavailable" ||
		!st.LastErrorTime.AsTime().Equal(at.Add(time.Second)) {
		t.Fatalf("filled %v", st)
	}
}

func TestAddConsumers(t *testing.T) {
	srv := bustest.RunServer(t)
	b := srv.Open(t)
	c, err := b.Consumer(context.Background(), bus.ConsumerConfig{Durable: "status-test"},
		func(context.Context, *bus.Msg) bus.Result { return bus.Done() })
	if err != nil {
		t.Fatal(err)
	}
	st := &iamflowv1.ServiceStatus{State: iamflowv1.State_STATE_RUNNING}
	if err := AddConsumers(context.Background(), st, nil, c); err != nil {
		t.Fatal(err)
	}
	if len(st.Consumers) != 1 || st.Consumers[0].Name != "status-test" || st.Consumers[0].Stream != bus.StreamEvents {
		t.Fatalf("consumers = %v", st.Consumers)
	}
	srv.Shutdown() // the server is gone: the numbers cannot be read
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st = &iamflowv1.ServiceStatus{State: iamflowv1.State_STATE_RUNNING}
	if err := AddConsumers(ctx, st, c); err == nil || st.State != iamflowv1.State_STATE_DEGRADED || len(st.Consumers) != 0 {
		t.Fatalf("unreadable consumer: err %v, state %v, consumers %v", err, st.State, st.Consumers)
	}
}
