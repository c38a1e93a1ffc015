package bus

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// reconnectWait is the pause between reconnect attempts to one server.
const reconnectWait = 2 * time.Second

// connect dials url with the bus's connection options.
func connect(url string, cfg Config, o options) (*nats.Conn, error) {
	nc, err := nats.Connect(url, connOptions(cfg, o)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", redactURLs(url), err)
	}
	o.logger.Info("nats connected", "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName())
	return nc, nil
}

// connOptions are the bus's connection options: reconnect forever, log
// connection events, credentials and TLS, then the caller's.
func connOptions(cfg Config, o options) []nats.Option {
	log := o.logger
	name := cfg.Name
	if name == "" {
		name = "iamflow"
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
				return
			}
			log.Info("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			args := []any{"error", err}
			if sub != nil {
				args = append(args, "subject", sub.Subject)
			}
			log.Error("nats async error", args...)
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Info("nats connection closed")
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
	}
	if cfg.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	return append(opts, o.natsOpts...)
}

// redactURLs hides passwords and tokens in a comma-separated list of URLs.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "[redacted]" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
