package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iamflow/iamflow/internal/secret"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// decodeLines parses one JSON object per line.
func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func TestLogCarriesTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	tel, err := Setup(context.Background(), DefaultConfig(),
		WithLogWriter(&buf), WithSpanExporter(tracetest.NewInMemoryExporter()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })

	ctx, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "work")
	tel.Logger.InfoContext(ctx, "inside", "k", "v")
	tel.Logger.WithGroup("g").InfoContext(ctx, "grouped", "k", "v")
	span.End()
	tel.Logger.Info("outside")

	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 3 {
		t.Fatalf("got %d log lines, want 3:\n%s", len(lines), buf.String())
	}
	sc := span.SpanContext()
	for _, l := range lines[:2] {
		if l["trace_id"] != sc.TraceID().String() || l["span_id"] != sc.SpanID().String() {
			t.Errorf("line %v: want top-level trace_id %s span_id %s", l, sc.TraceID(), sc.SpanID())
		}
	}
	if g, ok := lines[1]["g"].(map[string]any); !ok || g["k"] != "v" {
		t.Errorf("grouped line lost its group: %v", lines[1])
	}
	if _, ok := lines[2]["trace_id"]; ok {
		t.Errorf("line without span has a trace_id: %v", lines[2])
	}
	if lines[0]["level"] != "INFO" || lines[0]["msg"] != "inside" || lines[0]["k"] != "v" {
		t.Errorf("unexpected line: %v", lines[0])
	}
}

type loginValuer struct{ user, pw string }

func (l loginValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", l.user), slog.String("Password", l.pw))
}

func TestLogRedaction(t *testing.T) {
	const leak = "hunter2"
	var buf bytes.Buffer
	log := slog.New(NewLogHandler(slog.NewJSONHandler(&buf, nil)))

	log.Info("flat",
		"password", leak, "client_secret", leak, "Authorization", "Bearer "+leak,
		"X-Api-Token", leak, "credentials", leak, "user", "alice")
	log.Info("nested", slog.Group("req",
		slog.String("path", "/v1"),
		slog.Group("headers", slog.String("authorization", leak), slog.String("accept", "json"))))
	log.With("db_password", leak).WithGroup("outer").With("refresh_token", leak, "n", 1).
		WithGroup("inner").Info("with", "SECRET", leak, "ok", true)
	log.Info("group named sensitive", slog.Group("credentials", slog.String("user", "u"), slog.String("key", leak)))
	log.WithGroup("tokens").Info("opened group named sensitive", "value", leak)
	log.Info("valuer", "login", loginValuer{user: "bob", pw: leak})
	log.Info("secret value", "anything", secret.NewValue(leak))

	out := buf.String()
	if strings.Contains(out, leak) {
		t.Fatalf("secret leaked into logs:\n%s", out)
	}
	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 7 {
		t.Fatalf("got %d lines, want 7:\n%s", len(lines), out)
	}
	check := func(line int, path ...string) {
		t.Helper()
		var v any = lines[line]
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("line %d: %v is not a group in %v", line, path, lines[line])
			}
			v = m[p]
		}
		if v != Redacted {
			t.Errorf("line %d: %v = %v, want %q", line, path, v, Redacted)
		}
	}
	check(0, "password")
	check(0, "client_secret")
	check(0, "Authorization")
	check(0, "X-Api-Token")
	check(0, "credentials")
	if lines[0]["user"] != "alice" {
		t.Errorf("non-sensitive key changed: %v", lines[0])
	}
	check(1, "req", "headers", "authorization")
	if h := lines[1]["req"].(map[string]any)["headers"].(map[string]any); h["accept"] != "json" {
		t.Errorf("non-sensitive nested key changed: %v", h)
	}
	check(2, "db_password")
	check(2, "outer", "refresh_token")
	check(2, "outer", "inner", "SECRET")
	if lines[2]["outer"].(map[string]any)["inner"].(map[string]any)["ok"] != true {
		t.Errorf("non-sensitive key in groups changed: %v", lines[2])
	}
	check(3, "credentials")
	check(4, "tokens")
	check(5, "login", "Password")
	if lines[5]["login"].(map[string]any)["user"] != "bob" {
		t.Errorf("valuer group lost its other keys: %v", lines[5])
	}
}

func TestLoggerFormatAndLevel(t *testing.T) {
	var buf bytes.Buffer
	tel, err := Setup(context.Background(), Config{LogLevel: "warn", LogFormat: "text"},
		WithLogWriter(&buf), WithSpanExporter(tracetest.NewInMemoryExporter()))
	if err != nil {
		t.Fatal(err)
	}
	tel.Logger.Info("dropped")
	tel.Logger.Warn("kept", "token", "abc")
	out := buf.String()
	if strings.Contains(out, "dropped") || !strings.Contains(out, "msg=kept") || !strings.Contains(out, "token=[redacted]") {
		t.Fatalf("text log at warn level:\n%s", out)
	}
}

func TestIsSensitiveKey(t *testing.T) {
	for key, want := range map[string]bool{
		"password": true, "PASSWORD": true, "adminPassword": true, "secret": true,
		"token": true, "access_token": true, "Authorization": true, "credentials": true,
		"user": false, "path": false, "trace_id": false, "author": false,
	} {
		if got := IsSensitiveKey(key); got != want {
			t.Errorf("IsSensitiveKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestDurationsAreDurationStrings: a JSON handler writes a time.Duration as
// nanoseconds ("took":15000000); iamflow's logs say "15ms", in groups too.
func TestDurationsAreDurationStrings(t *testing.T) {
	for _, format := range []string{LogFormatJSON, LogFormatText} {
		var buf bytes.Buffer
		log, err := NewLogger(Config{LogFormat: format}, &buf)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("reconcile done", "took", 15*time.Millisecond, slog.Group("next", slog.Duration("in", 90*time.Minute)))
		out := buf.String()
		for _, want := range []string{"15ms", "1h30m0s"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: %q missing from %s", format, want, out)
			}
		}
		if strings.Contains(out, "15000000") {
			t.Errorf("%s: a duration logged as nanoseconds: %s", format, out)
		}
	}
}

// TestAutoFormat: auto writes JSON to anything that is not a terminal (a
// pipe, a file, a collector), and text to a terminal.
func TestAutoFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(DefaultConfig(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello")
	if !strings.HasPrefix(buf.String(), "{") {
		t.Errorf("auto to a buffer is not JSON: %s", buf.String())
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file counts as a terminal")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !isTerminal(tty) {
			t.Error("/dev/tty does not count as a terminal")
		}
	}
}
