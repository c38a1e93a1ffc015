package ords

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/iamflow/iamflow/emulator/internal/pause"
)

// maxBody bounds request bodies; larger ones get 413.
const maxBody = 10 << 20

// ordsError writes ORDS's JSON error body, the shape of the documented 401
// (docs/oci-sources.md §6): {"code","message","type":"tag:oracle.com,2020:error/<code>",
// "instance":"tag:oracle.com,2020:ecid/<ecid>"}. The same shape for other
// statuses (400, 404, 405, 413, 415, 503) is inferred.
func ordsError(w http.ResponseWriter, status int, code, message string) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"code":     code,
		"message":  message,
		"type":     "tag:oracle.com,2020:error/" + code,
		"instance": "tag:oracle.com,2020:ecid/" + hex.EncodeToString(b[:]),
	})
}

func unauthorized(w http.ResponseWriter) {
	ordsError(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
}

// serviceUnavailable is the answer when no database connection can be had:
// the pool is exhausted, an outage or an injected 503. The message follows
// ORDS's text for a connection it cannot get (inferred).
func serviceUnavailable(w http.ResponseWriter, why string) {
	w.Header().Set("Retry-After", "1")
	ordsError(w, http.StatusServiceUnavailable, "ServiceUnavailable",
		"The database connection pool is not available: "+why+
			". This can occur if the database is unavailable, the maximum number of sessions has been reached or the pool is not correctly configured.")
}

// serveHTTP routes /ords/<alias>/oauth/token, /ords/<alias>/_/sql and
// /_emulator/.
func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_emulator/") {
		e.serveControl(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/ords/")
	alias, sub, _ := strings.Cut(rest, "/")
	db := e.db(alias)
	if !ok || db == nil {
		ordsError(w, http.StatusNotFound, "NotFound", "Not Found")
		return
	}
	var serve func(http.ResponseWriter, *http.Request)
	switch sub {
	case "oauth/token":
		serve = db.serveToken
	case "_/sql":
		serve = db.serveSQL
	default:
		ordsError(w, http.StatusNotFound, "NotFound", "Not Found")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		ordsError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Method Not Allowed")
		return
	}
	if why := db.drawFault(); why != "" {
		serviceUnavailable(w, why)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	serve(w, r)
}

// drawFault decides whether this request gets an outage or injected 503.
func (db *database) drawFault() string {
	db.mu.Lock()
	defer db.mu.Unlock()
	switch {
	case db.faults.Outage:
		db.stats.Faults++
		return "database outage (injected)"
	case db.faults.ErrorRate > 0 && db.rng.Float64() < db.faults.ErrorRate:
		db.stats.Faults++
		return "injected fault"
	}
	return ""
}

// sqlRequest is the application/json body (docs/oci-sources.md §6).
type sqlRequest struct {
	StatementText *string     `json:"statementText"`
	Offset        *int        `json:"offset"`
	Limit         *int        `json:"limit"`
	Binds         []bindValue `json:"binds"`
}

// serveSQL answers POST /ords/<alias>/_/sql:
//
//   - 401 (ORDS body) without a valid bearer token or Basic credentials;
//   - 415 unless Content-Type is application/json or application/sql;
//   - 400 for a JSON body that does not parse, lacks statementText, or has a
//     negative offset or limit, and for an empty script;
//   - 503 when all PoolSize connections are busy (after PoolWait);
//   - else 200 with one item per statement, failed statements included.
//
// offset defaults to 0 and limit to MaxRows (also its cap); application/sql
// requests take the defaults. statementText may hold several statements,
// like an application/sql body; binds apply to each.
func (db *database) serveSQL(w http.ResponseWriter, r *http.Request) {
	db.count(func(s *Stats) { s.Requests++ })
	if !db.authorized(r) {
		db.count(func(s *Stats) { s.Unauthorized++ })
		unauthorized(w)
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != "application/sql") {
		ordsError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			"Unsupported Media Type: send application/json or application/sql")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			ordsError(w, http.StatusRequestEntityTooLarge, "PayloadTooLarge", "Request body too large")
			return
		}
		ordsError(w, http.StatusBadRequest, "BadRequest", "Unreadable request body")
		return
	}
	script, opts, msg := decodeSQLRequest(mt, body, db.maxRows())
	if msg != "" {
		ordsError(w, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	if !db.acquire(r) {
		db.count(func(s *Stats) { s.PoolExhausted++ })
		serviceUnavailable(w, "all connections are in use")
		return
	}
	defer db.release()
	if !pause.For(r.Context(), db.latency()) {
		return
	}
	stmts := splitScript(script)
	items := db.runScript(stmts, opts)
	db.count(func(s *Stats) { s.Statements += len(items) })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(sqlResponse{Env: envInfo{DefaultTimeZone: "UTC"}, Items: items})
}

// decodeSQLRequest reads a body as the given media type; msg is the reason
// for a 400, "" if the body is fine.
func decodeSQLRequest(mediaType string, body []byte, maxRows int) (script string, o execOptions, msg string) {
	o = execOptions{limit: maxRows}
	if mediaType == "application/sql" {
		if strings.TrimSpace(string(body)) == "" {
			return "", o, "The request body holds no SQL"
		}
		return string(body), o, ""
	}
	var req sqlRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return "", o, "The request body is not valid JSON: " + err.Error()
	}
	if dec.More() {
		return "", o, "The request body holds more than one JSON value"
	}
	if req.StatementText == nil || strings.TrimSpace(*req.StatementText) == "" {
		return "", o, "statementText is required"
	}
	if req.Offset != nil {
		if *req.Offset < 0 {
			return "", o, "offset must not be negative"
		}
		o.offset = *req.Offset
	}
	if req.Limit != nil {
		if *req.Limit < 0 {
			return "", o, "limit must not be negative"
		}
		if *req.Limit > 0 {
			o.limit = min(*req.Limit, maxRows)
		}
	}
	for _, b := range req.Binds {
		if b.Index < 0 || (b.Index == 0 && b.Name == "") {
			return "", o, "every bind needs an index (1-based) or a name"
		}
	}
	o.binds = req.Binds
	return *req.StatementText, o, ""
}

func (db *database) maxRows() int { return db.cfgMaxRows }

func (db *database) count(f func(*Stats)) {
	db.mu.Lock()
	defer db.mu.Unlock()
	f(&db.stats)
}

func (db *database) latency() time.Duration {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.faults.Latency
}

// acquire takes a pool connection, waiting up to PoolWait.
func (db *database) acquire(r *http.Request) bool {
	select {
	case db.pool <- struct{}{}:
		return true
	default:
	}
	if db.cfg.PoolWait <= 0 {
		return false
	}
	t := time.NewTimer(db.cfg.PoolWait)
	defer t.Stop()
	select {
	case db.pool <- struct{}{}:
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

func (db *database) release() { <-db.pool }
