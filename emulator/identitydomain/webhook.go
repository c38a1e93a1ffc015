package identitydomain

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/iamflow/iamflow/emulator/internal/pause"
)

// Events leave the domain in two ways: synchronously to OnEvent hooks (every
// emitted event, before the HTTP response that caused it is written), and
// asynchronously to the webhook, in emission order, one at a time, each
// retried with exponential backoff after a non-2xx answer or a network error
// until it is delivered or the domain is closed. The webhook request carries
// HTTP Basic auth and the headers an OCI Notifications HTTPS subscription
// sends with a message (X-OCI-NS-MessageId, -MessageType, -TopicName,
// -TopicOcid; inferred, docs/oci-sources.md §3); the body is the raw event JSON.
// Drop and duplicate faults apply to the webhook only.

type outEvent struct {
	body      []byte
	messageID string
}

type eventBus struct {
	d      *Domain
	client *http.Client

	// emitMu orders emission like the store commits: it is taken before the
	// store lock is released.
	emitMu sync.Mutex

	mu     sync.Mutex
	hooks  []func([]byte)
	queue  []outEvent
	gen    uint64 // bumped by reset, so a delivery in flight is not popped twice
	st     EventStats
	notify chan struct{}
}

func newEventBus(d *Domain, c *http.Client) *eventBus {
	return &eventBus{d: d, client: c, notify: make(chan struct{}, 1)}
}

// OnEvent registers fn to receive every event the domain emits, as the JSON
// body the webhook would receive. fn runs synchronously, in emission order,
// before the response to the change is written; it must not block for long
// and must not make changes to the domain itself.
func (d *Domain) OnEvent(fn func([]byte)) {
	d.events.mu.Lock()
	defer d.events.mu.Unlock()
	d.events.hooks = append(d.events.hooks, fn)
}

// emit hands one event to the hooks and the webhook queue. Callers hold emitMu.
func (b *eventBus) emit(body []byte) {
	webhook := b.d.cfg.EventsWebhook.URL != ""
	b.mu.Lock()
	b.st.Emitted++
	hooks := b.hooks
	if webhook {
		drop, dup := b.d.faults.eventFate()
		switch {
		case drop:
			b.st.Dropped++
		default:
			ev := outEvent{body: body, messageID: b.d.ids.hex32()}
			b.queue = append(b.queue, ev)
			b.st.Pending++
			if dup {
				b.queue = append(b.queue, ev)
				b.st.Pending++
				b.st.Duplicated++
			}
		}
	}
	b.mu.Unlock()
	if webhook {
		select {
		case b.notify <- struct{}{}:
		default:
		}
	}
	for _, h := range hooks {
		h(body)
	}
}

func (b *eventBus) stats() EventStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

func (b *eventBus) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = nil
	b.gen++
	b.st = EventStats{}
}

func (b *eventBus) head() (outEvent, uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		return outEvent{}, 0, false
	}
	return b.queue[0], b.gen, true
}

// deliverLoop delivers queued events until ctx is done.
func (b *eventBus) deliverLoop(ctx context.Context) {
	w := b.d.cfg.EventsWebhook
	for {
		ev, gen, ok := b.head()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-b.notify:
				continue
			}
		}
		backoff := w.MinBackoff
		for attempts := 1; ; attempts++ {
			err := b.post(ctx, ev)
			b.mu.Lock()
			if err == nil {
				if b.gen == gen && len(b.queue) > 0 {
					b.queue = b.queue[1:]
					b.st.Pending--
					b.st.Delivered++
				}
				b.mu.Unlock()
				break
			}
			b.st.Failed++
			stale := b.gen != gen
			dropped := !stale && b.giveUp(ev, gen, attempts, err)
			b.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			if stale || dropped {
				break
			}
			b.d.log.Warn("event delivery failed; will retry", "err", err, "backoff", backoff)
			if !pause.For(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, w.MaxBackoff)
		}
	}
}

func (b *eventBus) post(ctx context.Context, ev outEvent) error {
	w := b.d.cfg.EventsWebhook
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(ev.body))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-OCI-NS-MessageId", ev.messageID)
	req.Header.Set("X-OCI-NS-MessageType", "Notification")
	req.Header.Set("X-OCI-NS-TopicName", "iamflow-emulator-"+b.d.cfg.Name)
	req.Header.Set("X-OCI-NS-TopicOcid", "ocid1.onstopic.oc1..aaaaaaaa"+derivedBase32(b.d.cfg.Name, "topic"))
	if w.Username != "" {
		req.SetBasicAuth(w.Username, w.Password)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("post event: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post event: webhook answered %s", resp.Status)
	}
	return nil
}
