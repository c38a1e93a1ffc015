package ords

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Row is one result row, keyed by the lower-case jsonColumnName ORDS gives
// (username, account_status, ...). Numbers are json.Number, NULL is nil.
type Row map[string]any

// String returns column col as text: a string as is, a number in its JSON
// form, "" for NULL or a missing column.
func (r Row) String(col string) string {
	switch v := r[col].(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// sqlRequest is the application/json body of POST <base>/_/sql.
type sqlRequest struct {
	StatementText string `json:"statementText"`
	Offset        *int   `json:"offset,omitempty"`
	Limit         *int   `json:"limit,omitempty"`
	Binds         []Bind `json:"binds,omitempty"`
}

// sqlResponse is ORDS's answer (docs/oci-sources.md §6).
type sqlResponse struct {
	Items []responseItem `json:"items"`
}

type responseItem struct {
	StatementID   json.RawMessage `json:"statementId"`
	StatementType string          `json:"statementType"`
	ResultSet     *resultSet      `json:"resultSet"`
	Response      []string        `json:"response"`
	ErrorCode     json.RawMessage `json:"errorCode"`
	ErrorDetails  string          `json:"errorDetails"`
	ErrorMessage  string          `json:"errorMessage"`
}

type resultSet struct {
	Items   []Row `json:"items"`
	HasMore bool  `json:"hasMore"`
	Count   int   `json:"count"`
}

// page is one parsed answer.
type page struct {
	rows    []Row
	hasMore bool
	// statementType: query, ddl, dml, plsql, ...
	statementType string
}

// sqlError is a statement's error as parsed from an answer; the client turns
// it into an *Error with the call's context.
type sqlError struct {
	code      int
	detail    string
	retryable bool
}

// parseResponse parses the body of a 200 answer from /_/sql, which must
// report exactly one statement. A statement error becomes a sqlError; a body
// that is not the ORDS shape is an error too (terminal: retrying will not
// change the server's software).
func parseResponse(body []byte) (page, *sqlError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var r sqlResponse
	if err := dec.Decode(&r); err != nil {
		return page{}, &sqlError{detail: "the answer is not ORDS REST-enabled SQL JSON: " + cut(err.Error(), 200)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return page{}, &sqlError{detail: "the answer is not ORDS REST-enabled SQL JSON: data after the object"}
	}
	switch len(r.Items) {
	case 0:
		return page{}, &sqlError{detail: "the answer reports no statement"}
	case 1:
	default:
		return page{}, &sqlError{detail: fmt.Sprintf("the answer reports %d statements, one was sent", len(r.Items))}
	}
	it := r.Items[0]
	code := parseErrorCode(it.ErrorCode)
	if code != 0 || it.ErrorDetails != "" || it.ErrorMessage != "" {
		detail := it.ErrorDetails
		if detail == "" {
			detail = it.ErrorMessage
		}
		if c := parseORA(detail); c != 0 && code == 0 {
			code = c
		}
		if detail == "" {
			detail = fmt.Sprintf("ORA-%05d", code)
		}
		detail = cut(strings.TrimSpace(detail), 512)
		return page{}, &sqlError{code: code, detail: detail, retryable: retryableORA[code] || isPoolExhausted(detail)}
	}
	p := page{statementType: it.StatementType}
	if it.ResultSet != nil {
		p.rows = it.ResultSet.Items
		p.hasMore = it.ResultSet.HasMore
	}
	return p, nil
}

// parseErrorCode reads errorCode, a number (942) or a string ("942" or "ORA-00942").
func parseErrorCode(raw json.RawMessage) int {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return 0
	}
	if c := parseORA(s); c != 0 {
		return c
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 99999 {
		return 0
	}
	return n
}

// errorBody is ORDS's JSON error answer for non-200 statuses:
// {"code":"Unauthorized","message":"Unauthorized","type":"...","instance":"..."}.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// OAuth token endpoint errors.
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// describeErrorBody turns a non-200 answer's body into a bounded, one-line
// detail and the Oracle error number it mentions, if any.
func describeErrorBody(status int, body []byte) (string, int) {
	var eb errorBody
	var parts []string
	if json.Unmarshal(body, &eb) == nil {
		for _, s := range []string{eb.Code, eb.Message, eb.Error, eb.ErrorDescription} {
			if s = strings.TrimSpace(s); s != "" && !contains(parts, s) {
				parts = append(parts, s)
			}
		}
	}
	detail := strings.Join(parts, ": ")
	if detail == "" {
		detail = strings.Join(strings.Fields(string(body)), " ")
	}
	if detail == "" {
		detail = fmt.Sprintf("HTTP %d", status)
	}
	detail = strings.ToValidUTF8(detail, "?")
	return cut(detail, 512), parseORA(string(body))
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
