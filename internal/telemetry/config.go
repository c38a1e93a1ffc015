package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Config is the telemetry section of the configuration. Tracing itself is
// configured by the standard OTEL_* environment variables (see Setup), so
// that any OpenTelemetry collector and any deployment tooling work unchanged.
type Config struct {
	// ServiceName is the service.name resource attribute of the traces. The
	// OTEL_SERVICE_NAME environment variable, when set, overrides it.
	ServiceName string `yaml:"service_name"`
	// LogLevel is the lowest level logged: debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is json (one JSON object per line), text (key=value) or
	// auto: text when the log goes to a terminal, json otherwise.
	LogFormat string `yaml:"log_format"`
}

// Log formats accepted by Config.LogFormat.
const (
	LogFormatAuto = "auto"
	LogFormatJSON = "json"
	LogFormatText = "text"
)

// DefaultConfig returns the configuration used when nothing is set: service
// name "iamflow", level info, text logs on a terminal and JSON elsewhere.
func DefaultConfig() Config {
	return Config{ServiceName: "iamflow", LogLevel: "info", LogFormat: LogFormatAuto}
}

// Validate reports every problem in the configuration, each naming its YAML
// key relative to the telemetry section (the config package adds
// "telemetry.") and how to fix it. Empty values are accepted and mean the
// default.
func (c Config) Validate() error {
	var errs []error
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	switch strings.ToLower(c.LogFormat) {
	case "", LogFormatAuto, LogFormatJSON, LogFormatText:
	default:
		errs = append(errs, fmt.Errorf("log_format: %q is not a log format: use auto, json or text", c.LogFormat))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log_level: %q is not a log level: use debug, info, warn or error", s)
}
