//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// webhookRecorder stands between the emulated domains and ingest: it passes
// each delivery on unchanged and records ingest's answer, so the test knows
// exactly which OCI event ids ingest acknowledged (answered 2xx), and when
// it answered anything else.
type webhookRecorder struct {
	client   *http.Client
	inflight atomic.Int64 // deliveries being passed on now

	mu       sync.Mutex
	target   string            // ingest's webhook URL now ("" before it is up)
	acked    map[string]string // event id -> domain name of acknowledged deliveries
	statuses map[int]int       // ingest's answers by status; 0: no answer (ingest down)
	byDomain map[string]int    // acknowledged deliveries per domain (duplicates included)
	refused  []refusal         // every answer that was not 2xx
}

// refusal is a delivery ingest did not acknowledge.
type refusal struct {
	at     time.Time
	status int // 0: no answer
	detail string
}

func newWebhookRecorder() *webhookRecorder {
	return &webhookRecorder{
		client:   &http.Client{Timeout: 20 * time.Second},
		acked:    map[string]string{},
		statuses: map[int]int{},
		byDomain: map[string]int{},
	}
}

// setTarget points the recorder at ingest's webhook (after each start: the
// webhook's port is the one ingest chose).
func (rec *webhookRecorder) setTarget(url string) {
	rec.mu.Lock()
	rec.target = url
	rec.mu.Unlock()
}

func (rec *webhookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.inflight.Add(1)
	defer rec.inflight.Add(-1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev struct {
		EventID string `json:"eventID"`
		Data    struct {
			AdditionalDetails struct {
				DomainName string `json:"domainName"`
			} `json:"additionalDetails"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	rec.mu.Lock()
	target := rec.target
	rec.mu.Unlock()
	var resp *http.Response
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err == nil {
		req.Header = r.Header.Clone()
		resp, err = rec.client.Do(req)
	}
	if err != nil {
		rec.mu.Lock()
		rec.statuses[0]++
		rec.refused = append(rec.refused, refusal{at: time.Now(), detail: err.Error()})
		rec.mu.Unlock()
		http.Error(w, "ingest unreachable: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	rec.mu.Lock()
	rec.statuses[resp.StatusCode]++
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 && ev.EventID != "" {
		rec.acked[ev.EventID] = ev.Data.AdditionalDetails.DomainName
		rec.byDomain[ev.Data.AdditionalDetails.DomainName]++
	} else if resp.StatusCode < 200 || resp.StatusCode > 299 {
		rec.refused = append(rec.refused, refusal{at: time.Now(), status: resp.StatusCode, detail: string(bytes.TrimSpace(answer))})
	}
	rec.mu.Unlock()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// snapshot returns copies of what was recorded.
func (rec *webhookRecorder) snapshot() (acked map[string]string, statuses map[int]int, byDomain map[string]int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	acked, statuses, byDomain = map[string]string{}, map[int]int{}, map[string]int{}
	for k, v := range rec.acked {
		acked[k] = v
	}
	for k, v := range rec.statuses {
		statuses[k] = v
	}
	for k, v := range rec.byDomain {
		byDomain[k] = v
	}
	return acked, statuses, byDomain
}

// counts returns how often ingest answered status, and how many deliveries
// from domain it acknowledged.
func (rec *webhookRecorder) counts(status int, domain string) (answered, acked int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.statuses[status], rec.byDomain[domain]
}

// refusals returns every delivery ingest did not acknowledge.
func (rec *webhookRecorder) refusals() []refusal {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]refusal(nil), rec.refused...)
}
