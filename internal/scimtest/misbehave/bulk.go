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
	// BulkRefuseOperation, when positive, is the operation (1-based) of
	// every Bulk request that is not run and answers 503 in its place, as
	// a server failing one operation of many does.
	BulkRefuseOperation int
	// BulkLoseAnswers is how many of the next Bulk requests run and then
	// answer 502, as a proxy that lost the server's answer does; counted
	// down.
	BulkLoseAnswers int
}

// bulk bends a Bulk request and its answer. Counted: "bulk413",
// "bulk429", "shuffled", "dropped-result", "bulk-refused-op",
// "bulk-answer-lost".
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, f Faults) {
	if s.takeOne(&s.f.BulkTooManyRequests) {
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
	body, refused := s.takeOutOperation(body, f.BulkRefuseOperation)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r)
	if s.takeOne(&s.f.BulkLoseAnswers) {
		s.count("bulk-answer-lost")
		scimError(w, http.StatusBadGateway, "", "The upstream server's answer was lost.")
		return
	}
	out := rec.Body.Bytes()
	if rec.Code == http.StatusOK && (f.BulkShuffle || f.BulkDropResults > 0 || refused != nil) {
		out = s.bendResults(out, f, refused)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

// takeOne reports whether this request is one of the *n still to bend (a
// count in s.f, such as BulkTooManyRequests), and counts it down.
func (s *Server) takeOne(n *int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *n <= 0 {
		return false
	}
	*n--
	return true
}

// takeOutOperation removes operation n (1-based) from a Bulk request body
// of more than one operation, and returns the body and the operation taken
// out (nil when none is).
func (s *Server) takeOutOperation(body []byte, n int) ([]byte, map[string]any) {
	if n <= 0 {
		return body, nil
	}
	var all map[string]any
	if json.Unmarshal(body, &all) != nil {
		return body, nil
	}
	ops, _ := all["Operations"].([]any)
	if len(ops) < n || len(ops) <= 1 {
		return body, nil
	}
	refused, _ := ops[n-1].(map[string]any)
	all["Operations"] = slices.Delete(ops, n-1, n)
	body, _ = json.Marshal(all)
	s.count("bulk-refused-op")
	return body, refused
}

// bendResults puts a 503 result where the refused operation stood, then
// shuffles and drops results as f asks.
func (s *Server) bendResults(out []byte, f Faults, refused map[string]any) []byte {
	var resp map[string]any
	if json.Unmarshal(out, &resp) != nil {
		return out
	}
	ops, _ := resp["Operations"].([]any)
	if refused != nil && len(ops) >= f.BulkRefuseOperation-1 {
		res := map[string]any{"method": refused["method"], "status": "503",
			"response": map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"}, "status": "503", "detail": "Service unavailable."}}
		if id, ok := refused["bulkId"]; ok {
			res["bulkId"] = id
		}
		ops = slices.Insert(ops, f.BulkRefuseOperation-1, any(res))
	}
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
	return out
}
