// Package tlsfiles serves TLS from certificate files that are read again
// when they change, so a renewed certificate (cert-manager, certbot, a
// rotated secret) is used without a restart, and builds the client side of
// the same: a CA to trust and, for mutual TLS, a client certificate.
package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval is how often, at most, a Reloader looks at its files: a
// handshake after the interval has passed reads them again if their size
// or modification time changed.
const CheckInterval = time.Second

// Reloader holds a server certificate (and optionally the CAs that sign
// client certificates) read from files, and reads them again when they
// change. A change that does not load (a key written after its
// certificate, a truncated file) keeps the last good pair and is logged.
type Reloader struct {
	certFile, keyFile, clientCAFile string
	log                             *slog.Logger
	now                             func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	clientCAs *x509.CertPool
	stamp     string // sizes and modification times the loaded files had
	checked   time.Time
}

// NewReloader reads certFile and keyFile (PEM), and clientCAFile (PEM, may
// be empty) now, failing if they do not load.
func NewReloader(certFile, keyFile, clientCAFile string, log *slog.Logger) (*Reloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile, log: log, now: time.Now}
	stamp, err := r.stampNow()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	r.checked = r.now()
	return r, nil
}

func (r *Reloader) files() []string {
	fs := []string{r.certFile, r.keyFile}
	if r.clientCAFile != "" {
		fs = append(fs, r.clientCAFile)
	}
	return fs
}

// stampNow describes the files' sizes and modification times.
func (r *Reloader) stampNow() (string, error) {
	var b bytes.Buffer
	for _, f := range r.files() {
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		fmt.Fprintf(&b, "%s:%d:%d;", f, st.Size(), st.ModTime().UnixNano())
	}
	return b.String(), nil
}

func (r *Reloader) load(stamp string) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: certificate %s with key %s: %w", r.certFile, r.keyFile, err)
	}
	var pool *x509.CertPool
	if r.clientCAFile != "" {
		if pool, err = LoadCAs(r.clientCAFile); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.cert, r.clientCAs, r.stamp = &cert, pool, stamp
	r.mu.Unlock()
	return nil
}

// refresh reads the files again if CheckInterval has passed and they changed.
func (r *Reloader) refresh() {
	r.mu.Lock()
	now := r.now()
	if now.Sub(r.checked) < CheckInterval {
		r.mu.Unlock()
		return
	}
	r.checked = now
	old := r.stamp
	r.mu.Unlock()
	stamp, err := r.stampNow()
	if err != nil {
		r.log.Warn("tls: cannot read the certificate files; serving the last good certificate", "error", err)
		return
	}
	if stamp == old {
		return
	}
	if err := r.load(stamp); err != nil {
		r.log.Warn("tls: the changed certificate files do not load; serving the last good certificate", "error", err)
		return
	}
	r.log.Info("tls: certificate files changed; serving the new certificate", "cert_file", r.certFile)
}

// Certificate returns the current certificate, reading the files again
// first if they changed.
func (r *Reloader) Certificate() *tls.Certificate {
	r.refresh()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert
}

// ServerConfig returns a TLS configuration serving the current certificate
// with base's other settings (NextProtos for gRPC or HTTP/2). With a client
// CA file, a client certificate signed by one of its CAs is verified when
// one is presented (tls.VerifyClientCertIfGiven): whoever serves decides
// which calls require one (see Verified).
func (r *Reloader) ServerConfig(base *tls.Config) *tls.Config {
	cfg := base.Clone()
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert := r.Certificate()
		r.mu.Lock()
		cas := r.clientCAs
		r.mu.Unlock()
		c := base.Clone()
		if c.MinVersion == 0 {
			c.MinVersion = tls.VersionTLS12
		}
		c.Certificates = []tls.Certificate{*cert}
		if cas != nil {
			c.ClientCAs, c.ClientAuth = cas, tls.VerifyClientCertIfGiven
		}
		return c, nil
	}
	return cfg
}

// LoadCAs reads a PEM bundle of CA certificates.
func LoadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Verified reports whether a connection's state carries a client
// certificate that verified against the configured client CAs.
func Verified(st *tls.ConnectionState) bool {
	return st != nil && len(st.VerifiedChains) > 0
}

// ClientConfig is the TLS configuration of a client: caFile (PEM) verifies
// the server, the system's roots when empty; certFile and keyFile, when
// set, are the client certificate for mutual TLS; serverName overrides the
// name verified (the host dialled by default).
func ClientConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pool, err := LoadCAs(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate %s with key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, errors.New("tls: give both the client certificate and its key, or neither")
	}
	return cfg, nil
}
