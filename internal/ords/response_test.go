package ords

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		rows     int
		hasMore  bool
		code     int
		errPart  string
		retryErr bool
	}{
		{name: "query", body: `{"env":{"defaultTimeZone":"UTC"},"items":[{"statementId":1,"statementType":"query","resultSet":{"metadata":[],"items":[{"username":"ALICE","n":12345678901234567890}],"hasMore":true,"limit":1,"offset":0,"count":1},"response":[],"result":0}]}`, rows: 1, hasMore: true},
		{name: "ddl", body: `{"items":[{"statementId":1,"statementType":"ddl","response":["User created."],"result":0}]}`},
		{name: "ora numeric", body: `{"items":[{"errorCode":1918,"errorDetails":"ORA-01918: user 'X' does not exist"}]}`, code: 1918, errPart: "ORA-01918"},
		{name: "ora string code", body: `{"items":[{"errorCode":"ORA-00054","errorMessage":"resource busy"}]}`, code: 54, errPart: "resource busy", retryErr: true},
		{name: "details only", body: `{"items":[{"errorDetails":"ORA-00942: table or view does not exist"}]}`, code: 942, errPart: "ORA-00942"},
		{name: "code only", body: `{"items":[{"errorCode":1031}]}`, code: 1031, errPart: "ORA-01031"},
		{name: "no items", body: `{"items":[]}`, errPart: "no statement"},
		{name: "two items", body: `{"items":[{},{}]}`, errPart: "2 statements"},
		{name: "not json", body: `<html>`, errPart: "not ORDS"},
		{name: "null", body: `null`, errPart: "no statement"},
	}
	for _, tt := range tests {
		p, se := parseResponse([]byte(tt.body))
		if tt.errPart != "" {
			if se == nil || !strings.Contains(se.detail, tt.errPart) || se.code != tt.code || se.retryable != tt.retryErr {
				t.Errorf("%s: got %+v, want code %d and detail with %q", tt.name, se, tt.code, tt.errPart)
			}
			continue
		}
		if se != nil || len(p.rows) != tt.rows || p.hasMore != tt.hasMore {
			t.Errorf("%s: got %+v, %+v", tt.name, p, se)
		}
	}
	p, _ := parseResponse([]byte(tests[0].body))
	if p.rows[0].String("n") != "12345678901234567890" || p.rows[0].String("username") != "ALICE" {
		t.Errorf("row %v: numbers must keep their digits", p.rows[0])
	}
}

func TestDescribeErrorBody(t *testing.T) {
	d, code := describeErrorBody(401, []byte(`{"code":"Unauthorized","message":"Unauthorized","type":"tag:oracle.com,2020:error/Unauthorized"}`))
	if d != "Unauthorized" || code != 0 {
		t.Errorf("%q %d", d, code)
	}
	d, _ = describeErrorBody(502, nil)
	if d != "HTTP 502" {
		t.Errorf("%q", d)
	}
	d, code = describeErrorBody(503, []byte("ORA-12520 \n  listener\xff"))
	if code != 12520 || strings.ContainsAny(d, "\n\xff") {
		t.Errorf("%q %d", d, code)
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"env":{"defaultTimeZone":"UTC"},"items":[{"statementId":1,"statementType":"query","resultSet":{"metadata":[],"items":[{"username":"ALICE"}],"hasMore":false},"result":0}]}`))
	f.Add([]byte(`{"items":[{"errorCode":1918,"errorDetails":"ORA-01918: user 'X' does not exist"}]}`))
	f.Add([]byte(`{"items":[{"errorCode":"ORA-00054"}]}`))
	f.Add([]byte(`{"items":[{"resultSet":{"items":[null,{"a":[1,{"b":null}]}],"hasMore":true}}]}`))
	f.Add([]byte(`{"items":[{},{}]}`))
	f.Add([]byte(`{"code":"Unauthorized","message":"Unauthorized"}`))
	f.Add([]byte("ORA-0\x00ORA-99999"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		p, se := parseResponse(body)
		if se != nil {
			if se.detail == "" || len(se.detail) > 512+3 || se.code < 0 || se.code > 99999 {
				t.Fatalf("bad sqlError %+v", se)
			}
			if len(p.rows) != 0 {
				t.Fatal("rows with an error")
			}
			return
		}
		for _, r := range p.rows {
			for k := range r {
				_ = r.String(k)
			}
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		d, code := describeErrorBody(500, body)
		if d == "" || len(d) > 512+3 || code < 0 || code > 99999 {
			t.Fatalf("describeErrorBody: %q %d", d, code)
		}
	})
}
