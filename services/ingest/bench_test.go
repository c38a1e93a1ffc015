package ingest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/secret"
)

// loadResult is what a closed-loop load of n operations by c senders measured.
type loadResult struct {
	n        int
	elapsed  time.Duration
	p50, p99 time.Duration
	errors   int64
}

func (r loadResult) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

// runLoad runs op n times from senders goroutines, each waiting for its
// answer before sending again, and records every operation's latency.
func runLoad(senders, n int, op func(i int) error) loadResult {
	lat := make([]time.Duration, n)
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					errs.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return loadResult{n: n, elapsed: elapsed, p50: lat[n/2], p99: lat[n*99/100], errors: errs.Load()}
}

// BenchmarkWebhook measures the whole webhook path (HTTP request in, event
// parsed, published, JetStream's acknowledgement awaited, 202 out) with 64
// concurrent senders, beside raw JetStream publishes of the same events by the
// same number of senders in the same run, on a file-backed stream.
//
//	go test -run '^$' -bench Webhook -benchtime 20000x ./services/ingest
func BenchmarkWebhook(b *testing.B) {
	const senders = 64
	srv := bustest.RunServer(b)
	bs := srv.Open(b)
	cfg := DefaultConfig()
	cfg.Password = "env:UNUSED"
	svc, err := New(context.Background(), cfg, bs, Webhook{Password: secret.NewValue(testPassword),
		Domains: []Domain{{Name: "hub", OCIName: "Default"}}})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(svc.Handler())
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}}
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	body := func(prefix string, i int) string {
		return addUserToGroup(fmt.Sprintf("%s-%s-%d", run, prefix, i), "Default")
	}
	sample, err := Parse(nil, []byte(body("x", 0)), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	sample.Events[0].Domain = "hub"
	payload, _ := marshalForBench(sample)

	// The load generator's own work stays out of the measurement.
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = body("web", i)
	}
	ctx := context.Background()
	b.ResetTimer()
	raw := runLoad(senders, b.N, func(i int) error {
		m := &nats.Msg{Subject: "iam.event.hub.membership.member_added", Data: payload, Header: nats.Header{}}
		_, err := bs.Publish(ctx, m, fmt.Sprintf("%s-raw-%d", run, i))
		return err
	})
	web := runLoad(senders, b.N, func(i int) error {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/events", strings.NewReader(bodies[i]))
		req.SetBasicAuth("iamflow", testPassword)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	b.StopTimer()
	if raw.errors+web.errors > 0 {
		b.Fatalf("errors: raw %d, webhook %d", raw.errors, web.errors)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(web.rate(), "webhook-events/s")
	b.ReportMetric(float64(web.p50.Microseconds())/1000, "webhook-p50-ms")
	b.ReportMetric(float64(web.p99.Microseconds())/1000, "webhook-p99-ms")
	b.ReportMetric(raw.rate(), "raw-events/s")
	b.ReportMetric(float64(raw.p50.Microseconds())/1000, "raw-p50-ms")
	b.ReportMetric(float64(raw.p99.Microseconds())/1000, "raw-p99-ms")
	b.ReportMetric(web.rate()/raw.rate(), "webhook/raw")
	if b.N == 1 {
		return // the framework's probe run: too small to say anything
	}
	b.Logf("\n%-22s %12s %10s %10s\n%-22s %12.0f %10.2f %10.2f\n%-22s %12.0f %10.2f %10.2f\nratio webhook/raw: %.2f (n=%d, %d senders)",
		"path", "events/s", "p50 ms", "p99 ms",
		"raw JetStream publish", raw.rate(), ms(raw.p50), ms(raw.p99),
		"webhook (HTTP->ack)", web.rate(), ms(web.p50), ms(web.p99),
		web.rate()/raw.rate(), b.N, senders)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func marshalForBench(b *Batch) ([]byte, error) { return event.Marshal(b.Events[0]) }
