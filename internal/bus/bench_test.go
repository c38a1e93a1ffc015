package bus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
)

// BenchmarkPublish measures synchronous publishes to IAM_EVENTS on file
// storage, each with its own Nats-Msg-Id, through Bus.Publish (trace context
// injection, metrics) beside raw jetstream.PublishMsg on the same server as a
// baseline, and Bus.PublishBatch in batches of 100.
func BenchmarkPublish(b *testing.B) {
	payload := make([]byte, 512) // about the size of an encoded IdentityEvent
	srv := bustest.RunServer(b)
	bs := srv.Open(b)
	ctx := context.Background()
	run := 0

	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	}

	b.Run("raw-jetstream", func(b *testing.B) {
		run++
		for i := range b.N {
			m := &nats.Msg{Subject: testSubject, Data: payload, Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("raw-%d-%d", run, i))
			if _, err := bs.JetStream().PublishMsg(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("bus-publish", func(b *testing.B) {
		run++
		for i := range b.N {
			m := &nats.Msg{Subject: testSubject, Data: payload}
			if _, err := bs.Publish(ctx, m, fmt.Sprintf("bus-%d-%d", run, i)); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("bus-batch-100", func(b *testing.B) {
		run++
		batch := make([]bus.OutMsg, 0, 100)
		flush := func() {
			if _, err := bs.PublishBatch(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
		for i := range b.N {
			batch = append(batch, bus.OutMsg{Msg: &nats.Msg{Subject: testSubject, Data: payload}, ID: fmt.Sprintf("batch-%d-%d", run, i)})
			if len(batch) == cap(batch) {
				flush()
			}
		}
		if len(batch) > 0 {
			flush()
		}
		report(b)
	})
}
