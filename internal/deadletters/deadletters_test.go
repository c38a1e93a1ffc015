package deadletters_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/deadletters"
	"github.com/iamflow/iamflow/internal/testutil"
)

// Over REST, as the console and curl call it: the dead letters of a consumer
// are listed with their reason, decoded event and trace id; one is replayed
// and handled; a consumer's rest are replayed at once.
func TestListAndReplayOverREST(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := bustest.RunServer(t).Open(t, bus.WithTracerProvider(tp), bus.WithPropagator(propagation.TraceContext{}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var failing atomic.Bool
	failing.Store(true)
	var handled atomic.Int32
	c, err := b.Consumer(ctx, bus.ConsumerConfig{Durable: "replicator-tgt", AckWait: time.Second, Backoff: []time.Duration{10 * time.Millisecond}},
		func(ctx context.Context, m *bus.Msg) bus.Result {
			if failing.Load() {
				return bus.Terminal(errors.New("target tgt refused the group: 400 invalid displayName"))
			}
			handled.Add(1)
			return bus.Done()
		})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ev := &iamflowv1.IdentityEvent{Id: fmt.Sprint("oci-", i), Type: "group.created", Domain: "src",
			Resource: &iamflowv1.Resource{Id: fmt.Sprint("g", i), Name: fmt.Sprint("Group ", i)}}
		data, _ := proto.Marshal(ev)
		if _, err := b.Publish(ctx, &nats.Msg{Subject: "iam.event.src.group.created", Data: data}, ev.Id); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	mux := runtime.NewServeMux()
	if err := deadletters.New(b).Endpoint().Gateway(ctx, mux); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	var list iamflowv1.ListDeadLettersResponse
	testutil.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		code, body := call("GET", "/v1/deadletters?consumer=replicator-tgt")
		if code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		if err := protojson.Unmarshal([]byte(body), &list); err != nil {
			return err
		}
		if len(list.DeadLetters) != 3 || len(list.Counts) != 1 || list.Counts[0].Count != 3 {
			return fmt.Errorf("%d dead letters, counts %v", len(list.DeadLetters), list.Counts)
		}
		return nil
	})
	if len(list.Counts) != 1 || list.Counts[0].Consumer != "replicator-tgt" || list.Counts[0].Count != 3 {
		t.Errorf("counts %v", list.Counts)
	}
	first := list.DeadLetters[0]
	if first.Reason != "target tgt refused the group: 400 invalid displayName" || first.Event == nil ||
		!strings.HasPrefix(first.Event.Resource.GetName(), "Group ") || first.MsgId != first.Event.Id ||
		first.Subject != "iam.event.src.group.created" || len(first.TraceId) != 32 || first.Payload != "" {
		t.Errorf("dead letter %v", first)
	}

	failing.Store(false)
	if code, body := call("POST", fmt.Sprintf("/v1/deadletters/%d:replay", first.Seq)); code != 200 || !strings.Contains(body, first.Event.Id) {
		t.Fatalf("replay one: %d %s", code, body)
	}
	testutil.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if n := handled.Load(); n != 1 {
			return fmt.Errorf("%d handled", n)
		}
		return nil
	})
	if code, body := call("POST", fmt.Sprintf("/v1/deadletters/%d:replay", first.Seq)); code != 404 {
		t.Errorf("replaying it again: %d %s, want 404", code, body)
	}
	code, body := call("POST", "/v1/deadletters/consumers/replicator-tgt:replay")
	var all struct{ Replayed int }
	_ = json.Unmarshal([]byte(body), &all)
	if code != 200 || all.Replayed != 2 {
		t.Fatalf("replay all: %d %s", code, body)
	}
	testutil.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if n := handled.Load(); n != 3 {
			return fmt.Errorf("%d handled", n)
		}
		return nil
	})
	if code, body := call("GET", "/v1/deadletters?consumer=bad.name"); code != 400 {
		t.Errorf("bad consumer name: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/deadletters/consumers/bad.name:replay"); code != 400 && code != 404 {
		t.Errorf("replay of a bad consumer name: %d %s", code, body)
	}
}

func TestNonEventPayloadIsShownAsText(t *testing.T) {
	got := deadletters.Proto(bus.DeadLetter{Stream: "IAM_EXPIRY", Data: []byte(`{"grant":"g1"}`)})
	if got.Payload != `{"grant":"g1"}` || got.Event != nil {
		t.Errorf("payload %q event %v", got.Payload, got.Event)
	}
	got = deadletters.Proto(bus.DeadLetter{Stream: "IAM_EXPIRY", Data: []byte{0xff, 0xfe}})
	if got.Payload != "<2 bytes, not text>" {
		t.Errorf("binary payload shown as %q", got.Payload)
	}
	got = deadletters.Proto(bus.DeadLetter{Stream: bus.StreamEvents, Data: []byte(strings.Repeat("é", 5000))})
	if len(got.Payload) > 4096+len("…") || !strings.HasSuffix(got.Payload, "…") {
		t.Errorf("long payload not cut: %d bytes", len(got.Payload))
	}
}
