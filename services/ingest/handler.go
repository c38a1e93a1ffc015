package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/event"
	"github.com/iamflow/iamflow/internal/secret"
)

// response is the JSON body of a 202 to events: every count, zeros included.
type response struct {
	// Published events were stored in JetStream by this request.
	Published int `json:"published"`
	// Duplicates were already stored (OCI delivered them before).
	Duplicates int `json:"duplicates"`
	// UnknownType events are not identity changes iamflow acts on.
	UnknownType int `json:"unknown_type"`
	// UnknownDomain events came from a domain not in the configuration.
	UnknownDomain int `json:"unknown_domain"`
}

// confirmationResponse is the JSON body of the answer to a Notifications
// subscription confirmation.
type confirmationResponse struct {
	// Confirmation is "confirmed" (200: iamflow fetched the confirmation
	// URL) or "pending" (202: logged for an operator to open).
	Confirmation string `json:"confirmation"`
}

// errorResponse is the JSON body of a 4xx or 5xx answer.
type errorResponse struct {
	// Error is a stable code: unauthorized, method_not_allowed,
	// unsupported_media_type, body_too_large, malformed_json, unsupported_shape,
	// missing_field, wrong_type, too_many_events, unavailable, confirmation_failed.
	Error string `json:"error"`
	// Message says what was wrong.
	Message string `json:"message"`
}

func (s *Service) serveEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.counters.requests.Add(1)
	code := s.handle(w, r)
	s.metrics.request(code).Inc()
	s.metrics.latency.Observe(time.Since(start).Seconds())
}

// handle answers one request and returns the status code it wrote.
func (s *Service) handle(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not supported; OCI posts events")
	}
	if !s.authorized(r) {
		s.counters.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="iamflow", charset="UTF-8"`)
		return writeError(w, http.StatusUnauthorized, "unauthorized", "HTTP Basic credentials are missing or wrong")
	}
	if ct := r.Header.Get("Content-Type"); !acceptedContentType(ct) {
		s.counters.rejected.Add(1)
		return writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("content type %q is not JSON; send application/json", ct))
	}
	buf := s.bodies.get()
	defer s.bodies.put(buf)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	body := buf.Bytes()
	if err != nil {
		s.counters.rejected.Add(1)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return writeError(w, http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("body exceeds the %d-byte limit (ingest.max_body_bytes)", s.cfg.MaxBodyBytes))
		}
		return writeError(w, http.StatusBadRequest, "unreadable_body", "could not read the body: "+err.Error())
	}
	now := time.Now()
	batch, err := Parse(r.Header, body, now)
	if err != nil {
		s.counters.rejected.Add(1)
		var pe *parseError
		if errors.As(err, &pe) {
			status := http.StatusBadRequest
			if pe.Code == "too_many_events" {
				status = http.StatusRequestEntityTooLarge
			}
			return writeError(w, status, pe.Code, pe.Error())
		}
		return writeError(w, http.StatusBadRequest, "malformed_json", err.Error())
	}
	if batch.Confirmation != nil {
		return s.handleConfirmation(w, r.Context(), batch.Confirmation)
	}
	return s.publish(w, r.Context(), batch, now)
}

// publish sends the batch's events to JetStream and answers 202 only when all
// are stored; otherwise 503 with Retry-After, so OCI delivers again.
func (s *Service) publish(w http.ResponseWriter, ctx context.Context, batch *Batch, now time.Time) int {
	var resp response
	for _, u := range batch.Unknown {
		resp.UnknownType++
		s.counters.unknownType.Add(1)
		s.metrics.events.WithLabelValues("unknown_type").Inc()
		if s.seenTypes.first(u.Type) {
			s.kit.Log().InfoContext(ctx, "ignoring event type iamflow does not act on (logged once per type)", "type", u.Type, "event_id", u.ID)
		}
	}
	// Made here, not in appendMessages, so that a small batch's list stays
	// on the stack.
	out, err := s.appendMessages(ctx, make([]bus.OutMsg, 0, len(batch.Events)), batch.Events, now, &resp)
	if err != nil {
		// Parse only returns classified events; this is a bug, not bad input.
		s.kit.Error(err)
		return writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
	if len(out) > 0 {
		// The publish is bounded by its own timeout, not by the sender's
		// connection: once started it finishes, so an event a sender gave
		// up on is stored all the same and its retry is a duplicate. That
		// also spares every request a child of the connection's context.
		pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout)
		acks, err := s.bus.PublishBatch(pubCtx, out)
		cancel()
		if err != nil {
			s.counters.unavailable.Add(1)
			s.degraded.Store(true)
			if isNoRoom(err) {
				s.store.full(time.Now(), err)
			}
			s.kit.Error(fmt.Errorf("publish to JetStream: %w", err))
			s.kit.Log().WarnContext(ctx, "JetStream did not acknowledge every event; asking OCI to retry", "events", len(out), "error", err)
			w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
			return writeError(w, http.StatusServiceUnavailable, "unavailable", "events could not be stored; retry later")
		}
		s.degraded.Store(false)
		s.store.clear()
		for _, a := range acks {
			if a.Duplicate {
				resp.Duplicates++
				s.metrics.duplicate.Inc()
			} else {
				resp.Published++
				s.metrics.published.Inc()
			}
		}
		s.counters.published.Add(int64(resp.Published))
		s.counters.duplicates.Add(int64(resp.Duplicates))
		s.kit.Event(out[len(out)-1].ID)
	}
	return writeAccepted(w, resp)
}

// appendMessages appends to out the JetStream messages that store events,
// leaving out (and counting in resp) the events of domains not in the
// configuration. An error is an event Parse should not have returned.
func (s *Service) appendMessages(ctx context.Context, out []bus.OutMsg, events []*iamflowv1.IdentityEvent, now time.Time, resp *response) ([]bus.OutMsg, error) {
	for _, e := range events {
		s.counters.received.Add(1)
		name, ok := s.domains.resolve(e)
		if !ok {
			resp.UnknownDomain++
			s.counters.unknownDomain.Add(1)
			s.metrics.events.WithLabelValues("unknown_domain").Inc()
			label := domainLabel(e)
			if s.seenDoms.first(label) {
				s.kit.Log().WarnContext(ctx, "dropping events from a domain not in the configuration (logged once per domain)", "domain", label, "event_id", e.GetId())
			}
			continue
		}
		e.Domain = name
		if e.ReceivedAt == nil {
			e.ReceivedAt = timestamppb.New(now)
		}
		subject, err := event.Subject(name, e.GetKind(), e.GetAction())
		if err != nil {
			return nil, err
		}
		data, err := event.Marshal(e)
		if err != nil {
			return nil, err
		}
		// Room for what Bus.PublishBatch adds: Nats-Msg-Id and the trace context.
		msg := &nats.Msg{Subject: subject, Data: data, Header: make(nats.Header, 4)}
		msg.Header["Content-Type"] = eventContentType
		msg.Header.Set("Iamflow-Event-Type", e.GetType())
		out = append(out, bus.OutMsg{Msg: msg, ID: e.GetId()})
	}
	return out, nil
}

func (s *Service) handleConfirmation(w http.ResponseWriter, ctx context.Context, c *Confirmation) int {
	u, err := checkConfirmURL(c.URL, s.cfg.Confirm)
	if err != nil {
		s.counters.confirmManual.Add(1)
		s.kit.Log().WarnContext(ctx, "subscription confirmation needs an operator: open the URL to confirm",
			"reason", err.Error(), "confirmation_url", redactURL(c.URL), "subscription_id", c.SubscriptionID, "topic_id", c.TopicID)
		return writeJSON(w, http.StatusAccepted, confirmationResponse{Confirmation: "pending"})
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.Confirm.Timeout)
	defer cancel()
	if err := fetchConfirmation(fctx, s.confirm, u); err != nil {
		// The caller sees what went wrong in words of its own (never an
		// internal address or resolver); the log has the whole error.
		public := confirmFailure(err)
		s.kit.Error(fmt.Errorf("confirm subscription at %s: %s", u.Host, public))
		s.kit.Log().WarnContext(ctx, "subscription confirmation failed; OCI will send it again", "error", err,
			"host", u.Host, "subscription_id", c.SubscriptionID)
		return writeError(w, http.StatusBadGateway, "confirmation_failed",
			fmt.Sprintf("confirming the subscription at %s failed: %s; OCI sends the confirmation again", u.Host, public))
	}
	s.counters.confirmed.Add(1)
	s.kit.Log().InfoContext(ctx, "subscription confirmed", "subscription_id", c.SubscriptionID, "topic_id", c.TopicID, "host", u.Host)
	return writeJSON(w, http.StatusOK, confirmationResponse{Confirmation: "confirmed"})
}

// authorized checks HTTP Basic credentials in constant time: the password,
// or the previous one during a rotation. Comparing hashes keeps the
// comparison independent of the lengths too, and both passwords are always
// compared, so timing does not tell which one matched.
func (s *Service) authorized(r *http.Request) bool {
	if s.cfg.Insecure {
		return true
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hu, hp := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	want := &s.creds
	match := subtle.ConstantTimeCompare(hp[:], want.password[:])
	if want.hasPrevious {
		match |= subtle.ConstantTimeCompare(hp[:], want.previous[:])
	}
	return subtle.ConstantTimeCompare(hu[:], want.user[:])&match == 1
}

// credHashes are the sha256 sums authorized compares with, computed once
// in New: the passwords do not change while the service runs.
type credHashes struct {
	user, password, previous [sha256.Size]byte
	hasPrevious              bool
}

func newCredHashes(user string, password, previous secret.Value) credHashes {
	h := credHashes{user: sha256.Sum256([]byte(user)), password: sha256.Sum256([]byte(password.Reveal()))}
	if !previous.IsZero() {
		h.previous, h.hasPrevious = sha256.Sum256([]byte(previous.Reveal())), true
	}
	return h
}

// acceptedContentType allows JSON and the generic types senders use for it;
// it refuses what is clearly not JSON (forms, multipart, XML).
func acceptedContentType(ct string) bool {
	if ct == "" || ct == "application/json" {
		return true // what OCI sends, without parsing it
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case mt == "application/json", strings.HasSuffix(mt, "+json"), mt == "text/plain",
		mt == "application/octet-stream", mt == "text/json":
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
	return code
}

// The Content-Type values of every event and every 202, shared: header
// values are only read once set, and a slice each is an allocation per
// event saved. The keys they go under are canonical already.
var (
	eventContentType = []string{event.ContentType}
	jsonContentType  = []string{"application/json"}
)

// writeAccepted answers 202 with resp, byte for byte what writeJSON writes,
// without encoding/json's reflection on the path every event takes.
func writeAccepted(w http.ResponseWriter, resp response) int {
	var arr [96]byte
	b := append(arr[:0], `{"published":`...)
	b = strconv.AppendInt(b, int64(resp.Published), 10)
	b = append(b, `,"duplicates":`...)
	b = strconv.AppendInt(b, int64(resp.Duplicates), 10)
	b = append(b, `,"unknown_type":`...)
	b = strconv.AppendInt(b, int64(resp.UnknownType), 10)
	b = append(b, `,"unknown_domain":`...)
	b = strconv.AppendInt(b, int64(resp.UnknownDomain), 10)
	b = append(b, "}\n"...)
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
	return http.StatusAccepted
}

// bodyPool holds request body buffers between requests. A body is only
// read while its request is handled: Parse copies every string it keeps.
type bodyPool struct{ p sync.Pool }

// maxPooledBody is the largest buffer kept for reuse; a rare large batch
// is left to the garbage collector rather than held.
const maxPooledBody = 64 << 10

func (bp *bodyPool) get() *bytes.Buffer {
	if buf, ok := bp.p.Get().(*bytes.Buffer); ok {
		buf.Reset()
		return buf
	}
	return new(bytes.Buffer)
}

func (bp *bodyPool) put(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBody {
		bp.p.Put(buf)
	}
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) int {
	return writeJSON(w, code, errorResponse{Error: errCode, Message: msg})
}
