//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
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
	targets  map[string]string // ingest process -> its webhook URL now ("" while it is down)
	next     int               // deliveries go to the ingest processes in turn
	answers  []answer          // every answer, in order
	acked    map[string]string // event id -> domain name of acknowledged deliveries
	statuses map[int]int       // ingest's answers by status; 0: no answer (ingest down)
	byDomain map[string]int    // acknowledged deliveries per domain (duplicates included)
	refused  []refusal         // every answer that was not 2xx
	ackedAt  map[eventKey][]time.Time
}

// eventKey identifies an event by what it is about: domain, type (the last
// part: removeuserfromgroup, ...), resource and related resource ids.
type eventKey struct{ domain, typ, resource, ref string }

// answer is ingest's answer to one delivery (0: none).
type answer struct {
	at     time.Time
	status int
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
		targets:  map[string]string{},
		acked:    map[string]string{},
		ackedAt:  map[eventKey][]time.Time{},
		statuses: map[int]int{},
		byDomain: map[string]int{},
	}
}

// setTarget sets where the ingest process name serves its webhook (after
// each start: the webhook's port is the one ingest chose; "" while it is
// down). Deliveries go to the processes in turn, as a load balancer would
// send them, each to one: the next delivery of a refused event may reach
// another.
func (rec *webhookRecorder) setTarget(name, url string) {
	rec.mu.Lock()
	rec.targets[name] = url
	rec.mu.Unlock()
}

// pick returns the webhook URL the next delivery goes to ("" when no
// ingest process is up). rec.mu is held.
func (rec *webhookRecorder) pick() string {
	names := slices.Sorted(maps.Keys(rec.targets))
	for range names {
		n := names[rec.next%len(names)]
		rec.next++
		if u := rec.targets[n]; u != "" {
			return u
		}
	}
	return ""
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
		EventID   string `json:"eventID"`
		EventType string `json:"eventType"`
		Data      struct {
			AdditionalDetails struct {
				DomainName         string `json:"domainName"`
				AdminResourceID    string `json:"adminResourceId"`
				AdminRefResourceID string `json:"adminRefResourceId"`
			} `json:"additionalDetails"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	ad := ev.Data.AdditionalDetails
	key := eventKey{ad.DomainName, ev.EventType[strings.LastIndexByte(ev.EventType, '.')+1:], ad.AdminResourceID, ad.AdminRefResourceID}
	rec.mu.Lock()
	target := rec.pick()
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
		now := time.Now()
		rec.refused = append(rec.refused, refusal{at: now, detail: err.Error()})
		rec.answers = append(rec.answers, answer{at: now})
		rec.mu.Unlock()
		http.Error(w, "ingest unreachable: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	rec.mu.Lock()
	rec.statuses[resp.StatusCode]++
	rec.answers = append(rec.answers, answer{at: time.Now(), status: resp.StatusCode})
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 && ev.EventID != "" {
		if _, dup := rec.acked[ev.EventID]; !dup {
			rec.ackedAt[key] = append(rec.ackedAt[key], time.Now())
		}
		rec.acked[ev.EventID] = ev.Data.AdditionalDetails.DomainName
		rec.byDomain[ev.Data.AdditionalDetails.DomainName]++
	} else if resp.StatusCode < 200 || resp.StatusCode > 299 {
		rec.refused = append(rec.refused, refusal{at: time.Now(), status: resp.StatusCode, detail: string(bytes.TrimSpace(body))})
	}
	rec.mu.Unlock()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
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

// answersSince returns ingest's answers at or after from.
func (rec *webhookRecorder) answersSince(from time.Time) []answer {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	i, _ := slices.BinarySearchFunc(rec.answers, from, func(a answer, t time.Time) int { return a.at.Compare(t) })
	return append([]answer(nil), rec.answers[i:]...)
}

// ackedAfter returns when ingest first acknowledged an event about key that
// was made at or after since (false if none was).
func (rec *webhookRecorder) ackedAfter(key eventKey, since time.Time) (time.Time, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, at := range rec.ackedAt[key] {
		if !at.Before(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

// refusals returns every delivery ingest did not acknowledge.
func (rec *webhookRecorder) refusals() []refusal {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]refusal(nil), rec.refused...)
}
