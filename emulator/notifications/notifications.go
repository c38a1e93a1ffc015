// Package notifications emulates the publish API of OCI Notifications (ONS),
// so that iamflow's notifications can be tested and tried without OCI:
//
//	POST /20181201/topics/{topicId}/messages
//	{"title": "...", "body": "..."}            -> 200 {"messageId": "...", "timeStamp": "..."}
//
// as the oci-go-sdk's ons.NotificationDataPlaneClient.PublishMessage sends
// it (the SDK is the client its tests use). What the emulator checks, and
// what it answers when a check fails, follows Oracle's API reference for
// PublishMessage (https://docs.oracle.com/iaas/api/#/en/notification/20181201/NotificationTopic/PublishMessage)
// and the service's documented limits (docs/oci-sources.md §3: a message is at most 64 KB):
//
//   - a request must carry an OCI request signature (Authorization:
//     Signature ...); the signature itself is not verified (the emulator has
//     no key to verify it with): 401 NotAuthenticated otherwise;
//   - the topic must exist: 404 NotAuthorizedOrNotFound otherwise;
//   - body is required and the message at most 64 KB: 400 InvalidParameter
//     and 413 otherwise;
//   - faults on demand: 429 TooManyRequests or 500 for the next N requests.
//
// Published messages are kept per topic for tests (Messages) and listed at
// GET /_emulator/messages?topic=<id>.
package notifications

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/iamflow/iamflow/emulator/listen"
)

// MaxMessageBytes is the largest message the service takes (docs/oci-sources.md §3).
const MaxMessageBytes = 64 << 10

// Config is the emulator's configuration.
type Config struct {
	// Topics are the topics that exist: OCIDs, with names.
	Topics []Topic `json:"topics" yaml:"topics"`
}

// Topic is one Notifications topic.
type Topic struct {
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name" yaml:"name"`
}

// Message is one published message.
type Message struct {
	ID      string    `json:"messageId"`
	TopicID string    `json:"topicId"`
	Title   string    `json:"title,omitempty"`
	Body    string    `json:"body"`
	At      time.Time `json:"timeStamp"`
}

// Emulator is an emulated Notifications data plane.
type Emulator struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	messages  []Message
	fail      []int // statuses to answer to the next requests
	onPublish func(Message)

	lis *listen.Server
}

// New validates cfg and returns the emulator.
func New(cfg Config, log *slog.Logger) (*Emulator, error) {
	seen := map[string]bool{}
	for i, t := range cfg.Topics {
		if !strings.HasPrefix(t.ID, "ocid1.onstopic.") {
			return nil, fmt.Errorf("notifications: topics[%d]: id %q is not a topic OCID (ocid1.onstopic...)", i, t.ID)
		}
		if seen[t.ID] {
			return nil, fmt.Errorf("notifications: topics[%d]: id %q twice", i, t.ID)
		}
		seen[t.ID] = true
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Emulator{cfg: cfg, log: log, lis: listen.New("notifications", "emulator")}, nil
}

// Handler serves the publish API and the /_emulator/ endpoints.
func (e *Emulator) Handler() http.Handler { return http.HandlerFunc(e.serveHTTP) }

// FailNext makes the next requests answer these statuses (429, 500, ...),
// one each, in order.
func (e *Emulator) FailNext(statuses ...int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail = append(e.fail, statuses...)
}

// OnPublish calls fn with every message published from now on (after it
// is stored, outside the emulator's lock).
func (e *Emulator) OnPublish(fn func(Message)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onPublish = fn
}

// Messages returns the messages published to topic ("" for every topic),
// oldest first.
func (e *Emulator) Messages(topic string) []Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Message
	for _, m := range e.messages {
		if topic == "" || m.TopicID == topic {
			out = append(out, m)
		}
	}
	return out
}

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("opc-request-id", newID())
	if r.URL.Path == "/_emulator/messages" && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.Messages(r.URL.Query().Get("topic")))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/20181201/topics/")
	topicID, tail, _ := strings.Cut(rest, "/")
	if !ok || tail != "messages" {
		ociError(w, http.StatusNotFound, "NotAuthorizedOrNotFound", "Unknown resource "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		ociError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Only POST publishes a message.")
		return
	}
	e.mu.Lock()
	var fault int
	if len(e.fail) > 0 {
		fault, e.fail = e.fail[0], e.fail[1:]
	}
	e.mu.Unlock()
	switch {
	case fault == http.StatusTooManyRequests:
		ociError(w, fault, "TooManyRequests", "Too many requests for the tenancy.")
		return
	case fault != 0:
		ociError(w, fault, "InternalServerError", "Injected fault.")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Signature ") {
		ociError(w, http.StatusUnauthorized, "NotAuthenticated", "The required information to complete authentication was not provided.")
		return
	}
	if !e.topic(topicID) {
		ociError(w, http.StatusNotFound, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, MaxMessageBytes+1<<10))
	if err != nil {
		ociError(w, http.StatusBadRequest, "InvalidParameter", "Unreadable body.")
		return
	}
	var md struct {
		Body  *string `json:"body"`
		Title *string `json:"title"`
	}
	if err := json.Unmarshal(raw, &md); err != nil {
		ociError(w, http.StatusBadRequest, "InvalidParameter", "The body is not valid JSON: "+err.Error())
		return
	}
	if md.Body == nil {
		ociError(w, http.StatusBadRequest, "InvalidParameter", "body is required.")
		return
	}
	title := ""
	if md.Title != nil {
		title = *md.Title
	}
	if len(*md.Body)+len(title) > MaxMessageBytes {
		ociError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("The message is larger than %d bytes.", MaxMessageBytes))
		return
	}
	m := Message{ID: newID(), TopicID: topicID, Title: title, Body: *md.Body, At: time.Now().UTC()}
	e.mu.Lock()
	e.messages = append(e.messages, m)
	observe := e.onPublish
	e.mu.Unlock()
	if observe != nil {
		observe(m)
	}
	e.log.Info("notification published", "topic", topicID, "title", title, "bytes", len(m.Body))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"messageId": m.ID, "timeStamp": m.At.Format(time.RFC3339Nano)})
}

func (e *Emulator) topic(id string) bool {
	for _, t := range e.cfg.Topics {
		if t.ID == id {
			return true
		}
	}
	return false
}

// ociError writes the OCI error body {"code","message"}.
func ociError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start listens on addr and serves Handler until Close.
func (e *Emulator) Start(addr string) error {
	_, err := e.lis.Start(addr, e.Handler(), e.log)
	return err
}

// URL is the root URL after Start (the SDK client's endpoint).
func (e *Emulator) URL() string { return e.lis.URL() }

// Close stops serving; requests in flight are cut off after 5s.
func (e *Emulator) Close() error { return e.lis.Close() }
