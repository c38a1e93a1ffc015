package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// defaultStartTimeout bounds the embedded server's start when ctx has no deadline.
const defaultStartTimeout = 30 * time.Second

// startEmbedded starts a JetStream-enabled NATS server in this process and
// waits until it accepts connections.
func startEmbedded(ctx context.Context, cfg Config, log *slog.Logger) (*server.Server, error) {
	name := cfg.Name
	if name == "" {
		name = "iamflow"
	}
	opts := &server.Options{
		ServerName: name,
		Host:       cfg.Embedded.Host,
		Port:       cfg.Embedded.Port,
		JetStream:  true,
		StoreDir:   cfg.Embedded.StoreDir,
		NoSigs:     true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	srv.SetLogger(serverLogger{log.With("component", "nats-server")}, false, false)
	srv.Start()

	wait := defaultStartTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats server on %s:%d with store %s: not ready after %v",
			cfg.Embedded.Host, cfg.Embedded.Port, cfg.Embedded.StoreDir, wait)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats server: JetStream did not start (store %s)", cfg.Embedded.StoreDir)
	}
	log.Info("embedded nats server started", "url", srv.ClientURL(), "store_dir", cfg.Embedded.StoreDir)
	return srv, nil
}

// serverLogger sends the embedded server's log to slog. Its notices (the
// start-up banner and routine chatter) go to Debug, so iamflow's own log stays
// readable; warnings and errors keep their level.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
