package telemetry

import (
	"context"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Redacted replaces the value of every log attribute whose key looks
// sensitive.
const Redacted = "[redacted]"

// sensitiveWords are the key fragments, in lower case, that make an
// attribute's value redacted.
var sensitiveWords = []string{
	"password", "passwd", "secret", "token", "authorization", "credential",
	"api_key", "apikey", "private_key", "cookie",
}

// IsSensitiveKey reports whether a log attribute (or header, or field) named
// key probably holds a secret: its name contains password, secret, token,
// authorization, credential, api key, private key or cookie, in any case.
func IsSensitiveKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range sensitiveWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// NewLogHandler wraps inner so that
//
//   - every record logged with a context that carries a valid span gets the
//     top-level attributes trace_id and span_id (W3C hex), and
//   - the value of every attribute whose key looks sensitive (IsSensitiveKey),
//     at any depth of groups, is replaced by "[redacted]"; a group whose name
//     looks sensitive is replaced whole, and
//   - durations are written as Go duration strings ("15ms"), in every format.
//
// Attributes are resolved (slog.LogValuer) before the check, so a value that
// logs as a group is checked too.
func NewLogHandler(inner slog.Handler) slog.Handler {
	return &logHandler{inner: inner}
}

// logHandler keeps the groups opened with WithGroup itself instead of passing
// them to inner, so that trace_id and span_id stay at the top level. Attrs
// given before any group go to inner.WithAttrs (already redacted), so inner
// can pre-format them.
type logHandler struct {
	inner  slog.Handler
	groups []openGroup
}

type openGroup struct {
	name  string
	attrs []slog.Attr
}

// Enabled implements slog.Handler.
func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// WithAttrs implements slog.Handler.
func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	if len(h.groups) == 0 {
		return &logHandler{inner: h.inner.WithAttrs(redactAttrs(attrs))}
	}
	groups := cloneGroups(h.groups)
	last := &groups[len(groups)-1]
	last.attrs = append(last.attrs, attrs...)
	return &logHandler{inner: h.inner, groups: groups}
}

// WithGroup implements slog.Handler.
func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	groups := append(cloneGroups(h.groups), openGroup{name: name})
	return &logHandler{inner: h.inner, groups: groups}
}

// Handle implements slog.Handler.
func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out.AddAttrs(
			slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()),
		)
	}
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	// Nest the record's attrs inside the open groups, innermost first.
	for i := len(h.groups) - 1; i >= 0; i-- {
		g := h.groups[i]
		inner := make([]slog.Attr, 0, len(g.attrs)+len(attrs))
		inner = append(append(inner, g.attrs...), attrs...)
		attrs = []slog.Attr{{Key: g.name, Value: slog.GroupValue(inner...)}}
	}
	out.AddAttrs(redactAttrs(attrs)...)
	return h.inner.Handle(ctx, out)
}

func cloneGroups(gs []openGroup) []openGroup {
	out := make([]openGroup, len(gs))
	for i, g := range gs {
		out[i] = openGroup{name: g.name, attrs: append([]slog.Attr(nil), g.attrs...)}
	}
	return out
}

func redactAttrs(attrs []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = redactAttr(a)
	}
	return out
}

func redactAttr(a slog.Attr) slog.Attr {
	if a.Key != "" && IsSensitiveKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(redactAttrs(v.Group())...)}
	case slog.KindDuration:
		// "1.5s", not 1500000000: JSON handlers write durations as nanoseconds.
		return slog.String(a.Key, v.Duration().String())
	}
	return slog.Attr{Key: a.Key, Value: v}
}
