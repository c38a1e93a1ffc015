//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// webhookRecorder stands between the emulated domains and ingest: it passes
// each delivery on unchanged and records ingest's answer, so the test knows
// exactly which OCI event ids ingest acknowledged (answered 2xx).
type webhookRecorder struct {
	target string // ingest's webhook URL
	client *http.Client

	mu       sync.Mutex
	acked    map[string]string // event id -> domain name of acknowledged deliveries
	statuses map[int]int       // ingest's answers by status; 0: no answer (ingest down)
	byDomain map[string]int    // acknowledged deliveries per domain (duplicates included)
}

func newWebhookRecorder(target string) *webhookRecorder {
	return &webhookRecorder{
		target:   target,
		client:   &http.Client{Timeout: 20 * time.Second},
		acked:    map[string]string{},
		statuses: map[int]int{},
		byDomain: map[string]int{},
	}
}

func (rec *webhookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	req, err := http.NewRequestWithContext(r.Context(), r.Method, rec.target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := rec.client.Do(req)
	if err != nil {
		rec.mu.Lock()
		rec.statuses[0]++
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
