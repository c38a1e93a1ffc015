package access

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/common/auth"
	"github.com/oracle/oci-go-sdk/v65/ons"
	"google.golang.org/protobuf/encoding/protojson"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/secret"
)

// NotifyConfig says where each step of a request is announced. Every
// announcement is stored in JetStream first (stream IAM_NOTIFY, one message
// per step and sink, deduplicated) and delivered by a durable consumer with
// retries; one that cannot be delivered is dead-lettered (iam.dlq.<durable>)
// for a person to look at. A failing sink never holds the request back.
type NotifyConfig struct {
	// OCI publishes to an OCI Notifications topic; its subscriptions (email,
	// Slack, PagerDuty, ...) are OCI's to deliver.
	OCI OCINotify `yaml:"oci"`
	// Webhooks receive a POST per step.
	Webhooks []Webhook `yaml:"webhooks"`
	// BeforeEnd is how long before a grant ends the requester is told.
	// Default 10m.
	BeforeEnd time.Duration `yaml:"before_end"`
	// Consumer tunes the delivering consumer (durable default
	// "access-notify", backoff 5s, 30s, 2m, 10m, 30m: about an hour).
	Consumer bus.ConsumerConfig `yaml:"consumer"`
}

// OCINotify is an OCI Notifications topic and how to sign requests to it.
type OCINotify struct {
	// TopicID is the topic's OCID; empty turns OCI notifications off.
	TopicID string `yaml:"topic_id"`
	// Region (e.g. us-ashburn-1) or Endpoint (a full URL, e.g. an emulator)
	// say where to publish.
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// Auth is instance_principal, resource_principal or api_key (default
	// instance_principal, as iamflow on an OCI instance runs).
	Auth string `yaml:"auth"`
	// APIKey is the signing key for auth api_key.
	APIKey APIKey `yaml:"api_key"`
}

// APIKey is an OCI API signing key.
type APIKey struct {
	Tenancy     string     `yaml:"tenancy"`
	User        string     `yaml:"user"`
	Fingerprint string     `yaml:"fingerprint"`
	PrivateKey  secret.Ref `yaml:"private_key"`
}

// Webhook is an HTTPS endpoint that receives each step.
type Webhook struct {
	// Name identifies the webhook in logs, status and dead letters.
	Name string `yaml:"name"`
	// URL receives the POST; a reference (env:, file:) when it holds a
	// secret, as Slack's incoming-webhook URLs do.
	URL secret.Ref `yaml:"url"`
	// Format is "json" (default: iamflow's signed JSON) or "slack" (a Slack
	// incoming-webhook message).
	Format string `yaml:"format"`
	// Secret signs json bodies: X-Iamflow-Signature: sha256=<hex HMAC of
	// "<timestamp>.<body>">, with X-Iamflow-Timestamp.
	Secret secret.Ref `yaml:"secret"`
}

// Notification stream and subjects.
const (
	NotifyStream  = "IAM_NOTIFY"
	notifySubject = "iam.notify.access"
)

// Steps announced.
const (
	StepRequested = "requested"
	StepApproved  = "approved"
	StepDenied    = "denied"
	StepExpired   = "expired"
	StepCancelled = "cancelled"
	StepActive    = "active"
	StepEndsSoon  = "ends_soon"
	StepEnded     = "ended"
	StepRevoked   = "revoked"
	StepFailed    = "failed"
)

func (c *NotifyConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.BeforeEnd == 0 {
		c.BeforeEnd = 10 * time.Minute
	}
	if c.OCI.TopicID != "" {
		errs = append(errs, c.OCI.validate()...)
	}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		at := fmt.Sprintf("access.notify.webhooks[%d]", i)
		if w.Name == "" {
			w.Name = fmt.Sprintf("webhook-%d", i+1)
		}
		if w.URL.IsZero() {
			bad("%s.url: required", at)
		}
		switch w.Format {
		case "":
			w.Format = "json"
		case "json", "slack":
		default:
			bad("%s.format: %q; want json or slack", at, w.Format)
		}
	}
	if c.Consumer.Durable == "" {
		c.Consumer.Durable = "access-notify"
	}
	if c.Consumer.Backoff == nil {
		c.Consumer.Backoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}
	}
	if c.Consumer.MaxDeliver == 0 {
		c.Consumer.MaxDeliver = 8
	}
	return errors.Join(errs...)
}

// validate checks an OCI Notifications topic and how requests to it are
// signed (default: the instance principal).
func (o *OCINotify) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !strings.HasPrefix(o.TopicID, "ocid1.onstopic.") {
		bad("access.notify.oci.topic_id: %q is not a topic OCID (ocid1.onstopic...)", o.TopicID)
	}
	if o.Region == "" && o.Endpoint == "" {
		bad("access.notify.oci: region or endpoint is required with topic_id")
	}
	switch o.Auth {
	case "":
		o.Auth = "instance_principal"
	case "instance_principal", "resource_principal":
	case "api_key":
		k := o.APIKey
		if k.Tenancy == "" || k.User == "" || k.Fingerprint == "" || k.PrivateKey.IsZero() {
			bad("access.notify.oci.api_key: tenancy, user, fingerprint and private_key are required with auth api_key")
		}
	default:
		bad("access.notify.oci.auth: %q; want instance_principal, resource_principal or api_key", o.Auth)
	}
	return errs
}

// announcement is one step of one request for one sink.
type announcement struct {
	Step    string          `json:"step"`
	Sink    string          `json:"sink"`
	At      time.Time       `json:"at"`
	Request json.RawMessage `json:"request"`
}

// sink delivers announcements somewhere.
type sink interface {
	name() string
	deliver(ctx context.Context, a announcement, r *iamflowv1.AccessRequest) error
}

// notifier stores announcements and delivers them.
type notifier struct {
	b     *bus.Bus
	cfg   NotifyConfig
	sinks map[string]sink
	now   func() time.Time
}

func newNotifier(ctx context.Context, b *bus.Bus, cfg NotifyConfig, opts notifyOptions) (*notifier, error) {
	n := &notifier{b: b, cfg: cfg, sinks: map[string]sink{}, now: opts.now}
	if cfg.OCI.TopicID != "" {
		s, err := newOCISink(ctx, cfg.OCI, opts.ociSigner)
		if err != nil {
			return nil, err
		}
		n.sinks[s.name()] = s
	}
	for _, w := range cfg.Webhooks {
		s, err := newWebhookSink(ctx, w, opts.httpClient)
		if err != nil {
			return nil, err
		}
		n.sinks[s.name()] = s
	}
	if len(n.sinks) == 0 {
		return n, nil
	}
	storage, replicas := b.Placement()
	if _, err := b.JetStream().CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: NotifyStream, Description: "iamflow access-request announcements, until delivered",
		Subjects: []string{notifySubject + ".>"}, Storage: storage, Replicas: replicas,
		Retention: jetstream.WorkQueuePolicy, MaxAge: 7 * 24 * time.Hour, Duplicates: 24 * time.Hour,
	}); err != nil {
		return nil, fmt.Errorf("access: create stream %s: %w", NotifyStream, err)
	}
	return n, nil
}

// notifyOptions are what tests replace.
type notifyOptions struct {
	now        func() time.Time
	httpClient *http.Client
	ociSigner  common.ConfigurationProvider
}

// announce stores the step for every sink (once per request and step,
// whoever announces it).
func (n *notifier) announce(ctx context.Context, step string, r *iamflowv1.AccessRequest) error {
	if len(n.sinks) == 0 {
		return nil
	}
	req, err := protojson.Marshal(r)
	if err != nil {
		return err
	}
	var errs []error
	for name := range n.sinks {
		b, _ := json.Marshal(announcement{Step: step, Sink: name, At: n.now().UTC(), Request: req})
		msg := &nats.Msg{Subject: notifySubject + "." + step, Data: b}
		if _, err := n.b.Publish(ctx, msg, r.Id+":"+step+":"+name); err != nil {
			errs = append(errs, fmt.Errorf("announce %s of request %s to %s: %w", step, r.Id, name, err))
		}
	}
	return errors.Join(errs...)
}

// consumerConfig is the delivering consumer's.
func (n *notifier) consumerConfig() bus.ConsumerConfig {
	cc := n.cfg.Consumer
	cc.Stream = NotifyStream
	return cc
}

// handle delivers one announcement to its sink.
func (n *notifier) handle(ctx context.Context, m *bus.Msg) bus.Result {
	var a announcement
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return bus.Terminal(fmt.Errorf("access notification: %w", err))
	}
	s := n.sinks[a.Sink]
	if s == nil {
		return bus.Done() // the sink was removed from the configuration
	}
	var r iamflowv1.AccessRequest
	if err := protojson.Unmarshal(a.Request, &r); err != nil {
		return bus.Terminal(fmt.Errorf("access notification: %w", err))
	}
	if err := s.deliver(ctx, a, &r); err != nil {
		var perm *permanentError
		if errors.As(err, &perm) {
			return bus.Terminal(fmt.Errorf("deliver %s of request %s to %s: %w", a.Step, r.Id, a.Sink, err))
		}
		return bus.Retry(fmt.Errorf("deliver %s of request %s to %s: %w", a.Step, r.Id, a.Sink, err))
	}
	return bus.Done()
}

// permanentError is a refusal retrying cannot fix (400, 401, 403, 404).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// summary is the one-line text of a step.
func summary(step string, r *iamflowv1.AccessRequest) string {
	d := r.GetDuration().AsDuration()
	switch step {
	case StepRequested:
		return fmt.Sprintf("%s asks for %s in %s for %v: %s", r.Requester, r.Group, r.Domain, d, orDash(r.Reason))
	case StepApproved:
		return fmt.Sprintf("%s's request for %s in %s was approved", r.UserName, r.Group, r.Domain)
	case StepDenied:
		return fmt.Sprintf("%s's request for %s in %s was denied: %s", r.UserName, r.Group, r.Domain, orDash(lastReason(r)))
	case StepExpired:
		return fmt.Sprintf("%s's request for %s in %s expired: nobody decided in time", r.UserName, r.Group, r.Domain)
	case StepCancelled:
		return fmt.Sprintf("%s's request for %s in %s was cancelled", r.UserName, r.Group, r.Domain)
	case StepActive:
		return fmt.Sprintf("%s is a member of %s in %s until %s", r.UserName, r.Group, r.Domain, r.GetExpiresAt().AsTime().UTC().Format(time.RFC3339))
	case StepEndsSoon:
		return fmt.Sprintf("%s's membership of %s in %s ends at %s", r.UserName, r.Group, r.Domain, r.GetExpiresAt().AsTime().UTC().Format(time.RFC3339))
	case StepEnded:
		return fmt.Sprintf("%s's membership of %s in %s ended", r.UserName, r.Group, r.Domain)
	case StepRevoked:
		return fmt.Sprintf("%s's membership of %s in %s was revoked", r.UserName, r.Group, r.Domain)
	case StepFailed:
		return fmt.Sprintf("%s's approved request for %s in %s could not be granted: %s", r.UserName, r.Group, r.Domain, r.LastError)
	}
	return step + " " + r.Id
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func lastReason(r *iamflowv1.AccessRequest) string {
	if n := len(r.Decisions); n > 0 {
		return r.Decisions[n-1].Reason
	}
	return ""
}

// webhookSink POSTs to an HTTPS endpoint.
type webhookSink struct {
	w      Webhook
	url    string
	secret secret.Value
	http   *http.Client
}

func newWebhookSink(ctx context.Context, w Webhook, c *http.Client) (*webhookSink, error) {
	u, err := secret.Resolve(ctx, w.URL)
	if err != nil {
		return nil, fmt.Errorf("access.notify webhook %s url: %w", w.Name, err)
	}
	pu, err := url.Parse(u.Reveal())
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
		return nil, fmt.Errorf("access.notify webhook %s: url is not an http(s) URL", w.Name)
	}
	s := &webhookSink{w: w, url: u.Reveal(), http: c}
	if !w.Secret.IsZero() {
		if s.secret, err = secret.Resolve(ctx, w.Secret); err != nil {
			return nil, fmt.Errorf("access.notify webhook %s secret: %w", w.Name, err)
		}
	}
	if s.http == nil {
		s.http = &http.Client{Timeout: 10 * time.Second}
	}
	return s, nil
}

func (s *webhookSink) name() string { return "webhook:" + s.w.Name }

func (s *webhookSink) deliver(ctx context.Context, a announcement, r *iamflowv1.AccessRequest) error {
	var body []byte
	if s.w.Format == "slack" {
		body, _ = json.Marshal(map[string]string{"text": "iamflow: " + summary(a.Step, r)})
	} else {
		body, _ = json.Marshal(map[string]any{"type": "access." + a.Step, "at": a.At, "summary": summary(a.Step, r),
			"request": json.RawMessage(a.Request)})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return &permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	if s.w.Format != "slack" {
		ts := strconv.FormatInt(a.At.Unix(), 10)
		req.Header.Set("X-Iamflow-Event", "access."+a.Step)
		req.Header.Set("X-Iamflow-Timestamp", ts)
		if !s.secret.IsZero() {
			req.Header.Set("X-Iamflow-Signature", "sha256="+Sign(s.secret.Reveal(), ts, body))
		}
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", s.w.Name, errors.Unwrap(err)) // the URL (maybe secret) is not repeated
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook %s answered %d", s.w.Name, resp.StatusCode)
	}
	return &permanentError{fmt.Errorf("webhook %s answered %d", s.w.Name, resp.StatusCode)}
}

// Sign is the X-Iamflow-Signature of a webhook body: the hex HMAC-SHA256,
// keyed with the webhook's secret, of "<timestamp>.<body>".
func Sign(key, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ociSink publishes to an OCI Notifications topic through the SDK.
type ociSink struct {
	topic  string
	client ons.NotificationDataPlaneClient
}

func newOCISink(ctx context.Context, c OCINotify, signer common.ConfigurationProvider) (*ociSink, error) {
	var err error
	if signer == nil {
		switch c.Auth {
		case "resource_principal":
			signer, err = auth.ResourcePrincipalConfigurationProvider()
		case "api_key":
			var key secret.Value
			if key, err = secret.Resolve(ctx, c.APIKey.PrivateKey); err == nil {
				// The SDK builds no client without a region; with an
				// endpoint the region is not used.
				region := c.Region
				if region == "" {
					region = "us-ashburn-1"
				}
				signer = common.NewRawConfigurationProvider(c.APIKey.Tenancy, c.APIKey.User, region, c.APIKey.Fingerprint, key.Reveal(), nil)
			}
		default:
			signer, err = auth.InstancePrincipalConfigurationProvider()
		}
		if err != nil {
			return nil, fmt.Errorf("access.notify.oci: %s: %w", c.Auth, err)
		}
	}
	client, err := ons.NewNotificationDataPlaneClientWithConfigurationProvider(signer)
	if err != nil {
		return nil, fmt.Errorf("access.notify.oci: %w", err)
	}
	switch {
	case c.Endpoint != "":
		client.Host = c.Endpoint
	case c.Region != "":
		client.SetRegion(c.Region)
	}
	noRetry := common.NoRetryPolicy() // the consumer retries, durably
	client.Configuration.RetryPolicy = &noRetry
	return &ociSink{topic: c.TopicID, client: client}, nil
}

func (s *ociSink) name() string { return "oci" }

func (s *ociSink) deliver(ctx context.Context, a announcement, r *iamflowv1.AccessRequest) error {
	title := "iamflow: access " + strings.ReplaceAll(a.Step, "_", " ")
	body := summary(a.Step, r) + "\n\nrequest " + r.Id
	_, err := s.client.PublishMessage(ctx, ons.PublishMessageRequest{TopicId: &s.topic,
		MessageDetails: ons.MessageDetails{Title: &title, Body: &body}})
	if err == nil {
		return nil
	}
	if se, ok := common.IsServiceError(err); ok {
		code := se.GetHTTPStatusCode()
		if code != http.StatusTooManyRequests && code < 500 {
			return &permanentError{fmt.Errorf("OCI Notifications answered %d %s: %s", code, se.GetCode(), se.GetMessage())}
		}
		return fmt.Errorf("OCI Notifications answered %d %s", code, se.GetCode())
	}
	return fmt.Errorf("OCI Notifications: %w", err)
}
