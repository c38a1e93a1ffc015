package identitydomain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/iamflow/iamflow/emulator/internal/defaults"
)

// Config describes one emulated identity domain. The zero value of every
// optional field means the default documented on it; New validates the rest.
type Config struct {
	// Name is the domain's short name, e.g. "src": lower-case letters, digits,
	// '-' and '_'. It seeds generated ids, so the same Name gives the same DomainID.
	Name string `json:"name" yaml:"name"`
	// DisplayName is the domain's name as OCI reports it (domainName and
	// domainDisplayName in events), e.g. "Default". Default: Name.
	DisplayName string `json:"displayName,omitempty" yaml:"displayName,omitempty"`
	// DomainID is the IDCS id, "idcs-" and 32 lower-case hex digits. Default:
	// derived from Name.
	DomainID string `json:"domainId,omitempty" yaml:"domainId,omitempty"`
	// DomainOCID, CompartmentOCID and TenancyOCID are reported on every
	// resource (domainOcid, compartmentOcid, tenancyOcid) and in events.
	// Default: derived from Name.
	DomainOCID      string `json:"domainOcid,omitempty" yaml:"domainOcid,omitempty"`
	CompartmentOCID string `json:"compartmentOcid,omitempty" yaml:"compartmentOcid,omitempty"`
	TenancyOCID     string `json:"tenancyOcid,omitempty" yaml:"tenancyOcid,omitempty"`
	// CompartmentName is data.compartmentName in events. Default: "root".
	CompartmentName string `json:"compartmentName,omitempty" yaml:"compartmentName,omitempty"`
	// Clients are the OAuth applications: confidential ones get tokens
	// with client credentials; those with RedirectURIs also log people in
	// (oidc.go). At least one is required.
	Clients []Client `json:"clients" yaml:"clients"`
	// Issuer is the iss of the tokens the domain signs and of its discovery
	// document. Default: DefaultIssuer, as every OCI domain (docs/oci-sources.md §7).
	Issuer string `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	// TokenTTL is the lifetime of an access token. Default: 3600s. (docs/oci-sources.md:
	// the real lifetime for client credentials is not documented; 3600s is
	// the IDCS default for confidential apps.)
	TokenTTL time.Duration `json:"tokenTTL,omitempty" yaml:"tokenTTL,omitempty"`
	// Tier selects the documented rate limits. Default: TierFree.
	Tier Tier `json:"tier,omitempty" yaml:"tier,omitempty"`
	// Limits overrides single limits of the tier.
	Limits Limits `json:"limits,omitempty" yaml:"limits,omitempty"`
	// Bulk configures /admin/v1/Bulk (RFC 7644 §3.7).
	Bulk BulkConfig `json:"bulk,omitempty" yaml:"bulk,omitempty"`
	// EventsWebhook, when URL is set, receives every event the domain emits.
	EventsWebhook EventsWebhook `json:"eventsWebhook,omitempty" yaml:"eventsWebhook,omitempty"`
	// EventValuesAsString emits adminValuesAdded/adminValuesRemoved as
	// JSON-encoded strings (the /AuditEvents form) instead of objects (the form
	// Events consumers read). docs/oci-sources.md §2 has both; parsers must accept both.
	EventValuesAsString bool `json:"eventValuesAsString,omitempty" yaml:"eventValuesAsString,omitempty"`
	// Faults are the faults active from the start; see SetFaults.
	Faults Faults `json:"faults,omitempty" yaml:"faults,omitempty"`
}

// Client is an OAuth application registered in the domain.
type Client struct {
	// ID is the client_id.
	ID string `json:"id" yaml:"id"`
	// Secret is the client_secret; required unless Public.
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
	// Name is the application's display name (actorName in events). Default: ID.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Public marks a public client (a CLI, a single-page app): it has no
	// secret, may not use client credentials, and logs people in with the
	// authorization code flow and PKCE alone.
	Public bool `json:"public,omitempty" yaml:"public,omitempty"`
	// RedirectURIs are where the authorization code flow may send people
	// back; a loopback URI (http://127.0.0.1/callback) matches any port.
	// Without any, the client cannot log people in.
	RedirectURIs []string `json:"redirectUris,omitempty" yaml:"redirectUris,omitempty"`
	// Audience is the primary audience of the access tokens issued to it
	// for people (aud). Default: ID.
	Audience string `json:"audience,omitempty" yaml:"audience,omitempty"`
}

// Tier is an identity domain type; it decides the rate limits (docs/oci-sources.md §4).
type Tier string

// The domain types of docs/oci-sources.md §4, plus TierUnlimited for load tests.
const (
	TierFree              Tier = "free"
	TierOracleApps        Tier = "oracle_apps"
	TierOracleAppsPremium Tier = "oracle_apps_premium"
	TierPremium           Tier = "premium"
	TierExternalUser      Tier = "external_user"
	TierUnlimited         Tier = "unlimited"
)

// Limits are request rates, per domain. A zero field takes the tier's value;
// a negative one disables that limit.
type Limits struct {
	// PerSecond and PerMinute limit "Others", which include /admin/v1/Users,
	// /admin/v1/Groups and /admin/v1/UserCapabilitiesChanger.
	PerSecond int `json:"perSecond,omitempty" yaml:"perSecond,omitempty"`
	PerMinute int `json:"perMinute,omitempty" yaml:"perMinute,omitempty"`
	// TokenPerSecond and TokenPerMinute limit /oauth2/v1/token ("Token Mgmt").
	TokenPerSecond int `json:"tokenPerSecond,omitempty" yaml:"tokenPerSecond,omitempty"`
	TokenPerMinute int `json:"tokenPerMinute,omitempty" yaml:"tokenPerMinute,omitempty"`
	// BulkPerSecond and BulkPerMinute limit /admin/v1/Bulk ("Bulk"): 5 per
	// second and 200 per minute on every tier.
	BulkPerSecond int `json:"bulkPerSecond,omitempty" yaml:"bulkPerSecond,omitempty"`
	BulkPerMinute int `json:"bulkPerMinute,omitempty" yaml:"bulkPerMinute,omitempty"`
}

// tierLimits are the documented limits (docs/oci-sources.md §4): Others 20/50/55/90/80 per
// second and 150/1500/1750/5000/4000 per minute; Token Mgmt 10/40/50/65/60
// per second and 150/1000/1700/3400/2300 per minute; Bulk 5 per second and
// 200 per minute on every tier.
var tierLimits = map[Tier]Limits{
	TierFree:              {PerSecond: 20, PerMinute: 150, TokenPerSecond: 10, TokenPerMinute: 150, BulkPerSecond: 5, BulkPerMinute: 200},
	TierOracleApps:        {PerSecond: 50, PerMinute: 1500, TokenPerSecond: 40, TokenPerMinute: 1000, BulkPerSecond: 5, BulkPerMinute: 200},
	TierOracleAppsPremium: {PerSecond: 55, PerMinute: 1750, TokenPerSecond: 50, TokenPerMinute: 1700, BulkPerSecond: 5, BulkPerMinute: 200},
	TierPremium:           {PerSecond: 90, PerMinute: 5000, TokenPerSecond: 65, TokenPerMinute: 3400, BulkPerSecond: 5, BulkPerMinute: 200},
	TierExternalUser:      {PerSecond: 80, PerMinute: 4000, TokenPerSecond: 60, TokenPerMinute: 2300, BulkPerSecond: 5, BulkPerMinute: 200},
	TierUnlimited:         {PerSecond: -1, PerMinute: -1, TokenPerSecond: -1, TokenPerMinute: -1, BulkPerSecond: -1, BulkPerMinute: -1},
}

// effective returns the tier's limits with the overrides applied.
func (l Limits) effective(t Tier) Limits {
	base := tierLimits[t]
	pick := func(o, b int) int {
		if o != 0 {
			return o
		}
		return b
	}
	return Limits{
		PerSecond:      pick(l.PerSecond, base.PerSecond),
		PerMinute:      pick(l.PerMinute, base.PerMinute),
		TokenPerSecond: pick(l.TokenPerSecond, base.TokenPerSecond),
		TokenPerMinute: pick(l.TokenPerMinute, base.TokenPerMinute),
		BulkPerSecond:  pick(l.BulkPerSecond, base.BulkPerSecond),
		BulkPerMinute:  pick(l.BulkPerMinute, base.BulkPerMinute),
	}
}

// EventsWebhook is where emitted events are POSTed, as an OCI Notifications
// HTTPS (custom URL) subscription would deliver them.
type EventsWebhook struct {
	// URL receives the events. Credentials in the URL (https://u:p@host/)
	// are used when Username is empty, as Notifications does.
	URL string `json:"url,omitempty" yaml:"url,omitempty"`
	// Username and Password are sent with HTTP Basic auth.
	Username string `json:"username,omitempty" yaml:"username,omitempty"`
	Password string `json:"password,omitempty" yaml:"password,omitempty"`
	// MinBackoff and MaxBackoff bound the exponential wait between attempts
	// to deliver a failed event. Default: 100ms and 30s. (Notifications itself
	// waits 1 to 32 minutes; that is too slow for tests.)
	MinBackoff time.Duration `json:"minBackoff,omitempty" yaml:"minBackoff,omitempty"`
	MaxBackoff time.Duration `json:"maxBackoff,omitempty" yaml:"maxBackoff,omitempty"`
	// Timeout bounds one delivery attempt. Default: 10s.
	Timeout time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	domainIDRE = regexp.MustCompile(`^idcs-[0-9a-f]{32}$`)
)

// withDefaults returns cfg with defaults filled in, or an error naming every
// invalid field.
func (cfg Config) withDefaults() (Config, error) {
	errs := cfg.identityDefaults()
	if len(cfg.Clients) == 0 {
		errs = append(errs, errors.New("clients: at least one OAuth client is required"))
	}
	clients, cerrs := clientsWithDefaults(cfg.Clients)
	cfg.Clients = clients
	errs = append(errs, cerrs...)
	errs = append(errs, cfg.tokenAndTierDefaults()...)
	if err := cfg.Bulk.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.EventsWebhook.withDefaults(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Faults.validate(); err != nil {
		errs = append(errs, fmt.Errorf("faults: %w", err))
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("identitydomain: invalid config: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// identityDefaults checks the domain's name and id and fills in the names
// and OCIDs left empty, derived from the name so that they are stable.
func (cfg *Config) identityDefaults() []error {
	var errs []error
	if !nameRE.MatchString(cfg.Name) {
		errs = append(errs, fmt.Errorf("name %q: want lower-case letters, digits, '-' or '_' (at most 63)", cfg.Name))
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = cfg.Name
	}
	if cfg.DomainID == "" {
		cfg.DomainID = "idcs-" + derivedHex(cfg.Name, "domain", 32)
	} else if !domainIDRE.MatchString(cfg.DomainID) {
		errs = append(errs, fmt.Errorf("domainId %q: want idcs- and 32 lower-case hex digits", cfg.DomainID))
	}
	if cfg.DomainOCID == "" {
		cfg.DomainOCID = "ocid1.domain.oc1..aaaaaaaa" + derivedBase32(cfg.Name, "domainocid")
	}
	if cfg.CompartmentOCID == "" {
		cfg.CompartmentOCID = "ocid1.compartment.oc1..aaaaaaaa" + derivedBase32(cfg.Name, "compartment")
	}
	if cfg.TenancyOCID == "" {
		cfg.TenancyOCID = "ocid1.tenancy.oc1..aaaaaaaa" + derivedBase32(cfg.Name, "tenancy")
	}
	if cfg.CompartmentName == "" {
		cfg.CompartmentName = "root"
	}
	return errs
}

// clientsWithDefaults returns a copy of the OAuth clients with their names
// and audiences filled in, and the problems of each.
func clientsWithDefaults(in []Client) ([]Client, []error) {
	var errs []error
	seen := map[string]bool{}
	clients := make([]Client, len(in))
	for i, c := range in {
		switch {
		case c.ID == "":
			errs = append(errs, fmt.Errorf("clients[%d]: id is required", i))
		case c.Secret == "" && !c.Public:
			errs = append(errs, fmt.Errorf("clients[%d]: secret is required unless the client is public", i))
		case c.Secret != "" && c.Public:
			errs = append(errs, fmt.Errorf("clients[%d]: a public client has no secret", i))
		case seen[c.ID]:
			errs = append(errs, fmt.Errorf("clients[%d]: duplicate id %q", i, c.ID))
		}
		seen[c.ID] = true
		if c.Name == "" {
			c.Name = c.ID
		}
		if c.Audience == "" {
			c.Audience = c.ID
		}
		for j, ru := range c.RedirectURIs {
			if u, err := url.Parse(ru); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
				errs = append(errs, fmt.Errorf("clients[%d].redirectUris[%d] %q: want an absolute http or https URL without a fragment", i, j, ru))
			}
		}
		c.RedirectURIs = slices.Clone(c.RedirectURIs)
		clients[i] = c
	}
	return clients, errs
}

// tokenAndTierDefaults fills in the issuer, token lifetime and tier and
// checks them.
func (cfg *Config) tokenAndTierDefaults() []error {
	var errs []error
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if err := defaults.Positive("tokenTTL", &cfg.TokenTTL, time.Hour); err != nil {
		errs = append(errs, err)
	}
	cfg.Tier = Tier(strings.ToLower(string(cfg.Tier)))
	if cfg.Tier == "" {
		cfg.Tier = TierFree
	}
	if _, ok := tierLimits[cfg.Tier]; !ok {
		errs = append(errs, fmt.Errorf("tier %q: want free, oracle_apps, oracle_apps_premium, premium, external_user or unlimited", cfg.Tier))
	}
	return errs
}

// withDefaults checks the webhook's URL, when there is one, takes its
// credentials from the URL's user info when none are set, and fills in the
// backoff and timeout.
func (w *EventsWebhook) withDefaults() error {
	if w.URL == "" {
		return nil
	}
	var err error
	u, perr := url.Parse(w.URL)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		err = fmt.Errorf("eventsWebhook.url %q: want an http or https URL", w.URL)
	} else if w.Username == "" && u.User != nil {
		w.Username = u.User.Username()
		w.Password, _ = u.User.Password()
	}
	if w.MinBackoff <= 0 {
		w.MinBackoff = 100 * time.Millisecond
	}
	if w.MaxBackoff <= 0 {
		w.MaxBackoff = 30 * time.Second
	}
	if w.MaxBackoff < w.MinBackoff {
		w.MaxBackoff = w.MinBackoff
	}
	if w.Timeout <= 0 {
		w.Timeout = 10 * time.Second
	}
	return err
}

func derivedHex(name, purpose string, n int) string {
	sum := sha256.Sum256([]byte("iamflow-emulator/" + purpose + "/" + name))
	return hex.EncodeToString(sum[:])[:n]
}

func derivedBase32(name, purpose string) string {
	sum := sha256.Sum256([]byte("iamflow-emulator/" + purpose + "/" + name))
	return ocidSuffix(sum[:])
}

// Option changes how New builds a Domain.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	clock      Clock
	httpClient *http.Client
	seed       *uint64
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock used for timestamps, token expiry and rate-limit
// windows. Default: the system clock.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithHTTPClient sets the client that delivers events to the webhook.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithRandomSeed makes generated ids, versions, tokens and event ids
// deterministic. Default: seeded from crypto/rand.
func WithRandomSeed(seed uint64) Option { return func(o *options) { o.seed = &seed } }

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
