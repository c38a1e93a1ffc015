package misbehave

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
)

// BulkFaults are the ways a server's SCIM Bulk (RFC 7644 §3.7) goes wrong.
type BulkFaults struct {
	// BulkShuffle: a BulkResponse lists its results in reverse order.
	BulkShuffle bool
	// BulkDropResults drops the last n results of every BulkResponse (the
	// operations still ran).
	BulkDropResults int
	// BulkMaxOperations, when positive, refuses a Bulk request of more
	// operations with 413, whatever discovery advertises.
	BulkMaxOperations int
	// BulkTooManyRequests is how many of the next Bulk requests answer 429
	// with Retry-After (RetryAfter); counted down. Other requests pass.
	BulkTooManyRequests int
}

// bulk bends a Bulk request and its answer. Counted: "bulk413",
// "bulk429", "shuffled", "dropped-result".
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, f Faults) {
	s.mu.Lock()
	throttle := s.f.BulkTooManyRequests > 0
	if throttle {
		s.f.BulkTooManyRequests--
	}
	s.mu.Unlock()
	if throttle {
		s.count("bulk429")
		s.tooManyRequests(w, f)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Operations []json.RawMessage `json:"Operations"`
	}
	if f.BulkMaxOperations > 0 && json.Unmarshal(body, &req) == nil && len(req.Operations) > f.BulkMaxOperations {
		s.count("bulk413")
		scimError(w, http.StatusRequestEntityTooLarge, "", "The number of operations exceeds the maxOperations ("+strconv.Itoa(f.BulkMaxOperations)+").")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r)
	out := rec.Body.Bytes()
	var resp map[string]any
	if rec.Code == http.StatusOK && (f.BulkShuffle || f.BulkDropResults > 0) && json.Unmarshal(out, &resp) == nil {
		ops, _ := resp["Operations"].([]any)
		if f.BulkShuffle && len(ops) > 1 {
			s.count("shuffled")
			slices.Reverse(ops)
		}
		if n := min(f.BulkDropResults, len(ops)); n > 0 {
			for range n {
				s.count("dropped-result")
			}
			ops = ops[:len(ops)-n]
		}
		resp["Operations"] = ops
		out, _ = json.Marshal(resp)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}
