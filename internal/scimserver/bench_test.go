package scimserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
)

// The benchmarks of the SCIM endpoint, each beside its baseline in the same
// run (docs/performance.md has a table):
//
//	go test -run '^$' -bench 'Push' -benchtime 5000x ./internal/scimserver
//	go test -run '^$' -bench 'Burst' -benchtime 1x ./internal/scimserver
//
// Push: creates/s and p99 of POST /Users through the endpoint (HTTP, two KV
// writes, the event published, the watch applied) with 32 clients in
// parallel, as an IdP's initial push sends them; the baseline publishes the
// same events straight to JetStream with the same parallelism.
// Burst: an initial push of 50,000 users and 5,000 groups (10 members each)
// with 32 clients: no request may be refused (429 or any other); then the
// memory a 50,000-user directory takes in a process that loads it.

const pushClients = 32

// latencies collects per-request durations from parallel workers.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	slices.Sort(l.d)
	if len(l.d) == 0 {
		return
	}
	p := func(q float64) float64 { return float64(l.d[int(q*float64(len(l.d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(l.d))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}

// parallel runs n operations over pushClients workers.
func parallel(b *testing.B, n int, op func(i int) error) *latencies {
	var next atomic.Int64
	var lat latencies
	var wg sync.WaitGroup
	var failed atomic.Value
	for range pushClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					failed.Store(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lat.add(mine)
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return &lat
}

func BenchmarkPush(b *testing.B) {
	b.Run("scim_create_user", func(b *testing.B) {
		h := newHarness(b, WithMaxInFlight(pushClients*2))
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pushClients}}
		run := fmt.Sprintf("%d", time.Now().UnixNano())
		b.ResetTimer()
		t0 := time.Now()
		lat := parallel(b, b.N, func(i int) error {
			body, _ := json.Marshal(user(fmt.Sprintf("u%d-%s@example.com", i, run)))
			return post(client, h.base+"/Users", body, http.StatusCreated)
		})
		lat.report(b, time.Since(t0))
	})
	b.Run("raw_publish_baseline", func(b *testing.B) {
		h := newHarness(b)
		now := time.Now()
		b.ResetTimer()
		t0 := time.Now()
		lat := parallel(b, b.N, func(i int) error {
			id := newID()
			e := h.srv.identityEvent("idp", storedEvent{ID: eventID("idp", kindUser, id, 1, "created", ""), Kind: "user", Action: "created",
				ResID: id, ResName: fmt.Sprintf("u%d@example.com", i), At: now}, now)
			data, err := event.Marshal(e)
			if err != nil {
				return err
			}
			msg := &nats.Msg{Subject: mustSubject(b, e), Data: data, Header: nats.Header{}}
			msg.Header.Set("Content-Type", event.ContentType)
			_, err = h.bus.PublishBatch(context.Background(), []bus.OutMsg{{Msg: msg, ID: e.GetId()}})
			return err
		})
		lat.report(b, time.Since(t0))
	})
}

func post(c *http.Client, url string, body []byte, want int) error {
	return send(c, http.MethodPost, url, body, want)
}

func send(c *http.Client, method, url string, body []byte, want int) error {
	return sendDecode(c, method, url, body, want, nil)
}

// sendDecode sends a SCIM request with the test token and wants status
// want; the answer is decoded into out unless out is nil.
func sendDecode(c *http.Client, method, url string, body []byte, want int, out any) error {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("%s %s: %w", method, url, err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// BenchmarkBurst is an IdP's initial push of 50,000 users and 5,000 groups
// of 10 members, 32 requests in parallel: every request must succeed (no
// 429). It reports the push's rate and p99, then the heap a fresh process
// holds for the 50,000-user directory it loads from the bucket.
func BenchmarkBurst(b *testing.B) {
	users, groups, perGroup := 50_000, 5_000, 10
	if testing.Short() {
		users, groups = 5_000, 500
	}
	for range b.N {
		h := newHarness(b, WithMaxInFlight(pushClients*2))
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pushClients}}
		ids := make([]string, users)
		t0 := time.Now()
		lat := parallel(b, users, func(i int) error {
			body, _ := json.Marshal(user(fmt.Sprintf("user%05d@example.com", i), "externalId", fmt.Sprintf("00u%05d", i),
				"displayName", fmt.Sprintf("User %d", i)))
			var out map[string]any
			if err := sendDecode(client, http.MethodPost, h.base+"/Users", body, http.StatusCreated, &out); err != nil {
				return fmt.Errorf("user %d: %w", i, err)
			}
			ids[i], _ = out["id"].(string)
			return nil
		})
		userTime := time.Since(t0)
		glat := parallel(b, groups, func(i int) error {
			g := group(fmt.Sprintf("Group %04d", i))
			if err := post(client, h.base+"/Groups", mustMarshal(g), http.StatusCreated); err != nil {
				return err
			}
			return nil
		})
		lat.add(glat.d)
		// Members by PATCH, as both IdPs push them.
		gids := h.srv.sources[0].dir.ids(kindGroup)
		mlat := parallel(b, len(gids), func(i int) error {
			var ms []any
			for j := range perGroup {
				ms = append(ms, map[string]any{"value": ids[(i*perGroup+j)%users]})
			}
			return send(client, http.MethodPatch, h.base+"/Groups/"+gids[i],
				mustMarshal(patchOps(map[string]any{"op": "Add", "path": "members", "value": ms})), http.StatusNoContent)
		})
		lat.add(mlat.d)
		total := time.Since(t0)
		b.ReportMetric(float64(users)/userTime.Seconds(), "user-creates/s")
		lat.report(b, total)

		// A fresh process loads the directory from the bucket: its heap.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		storage, replicas := h.bus.Placement()
		t1 := time.Now()
		d, err := openDirectory(context.Background(), h.bus.JetStream(), "idp", storage, replicas, h.srv.log)
		if err != nil {
			b.Fatal(err)
		}
		load := time.Since(t1)
		runtime.GC()
		runtime.ReadMemStats(&after)
		nu, ng := d.counts()
		if nu != users || ng != groups {
			b.Fatalf("loaded %d users and %d groups", nu, ng)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-directory")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(users), "B/user")
		b.ReportMetric(load.Seconds(), "s-load")
		d.close()
	}
}

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
