package telemetry

import (
	"context"
	"io"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("empty config (defaults) invalid: %v", err)
	}
	err := Config{LogLevel: "loud", LogFormat: "xml"}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"log_level: ", `"loud"`, "debug, info, warn or error", "log_format: ", "json or text"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err := Setup(context.Background(), Config{LogLevel: "loud"}); err == nil {
		t.Error("Setup accepted an invalid config")
	}
}

// clearOTelEnv unsets the variables that choose the exporter, for this test.
func clearOTelEnv(t *testing.T) {
	for _, k := range []string{
		"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SDK_DISABLED",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	} {
		t.Setenv(k, "") // restores the old value after the test
	}
}

func TestExporterFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr []string
	}{
		{name: "unset means none", want: "none"},
		{name: "unset with endpoint means otlp", env: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, want: "otlp"},
		{name: "unset with traces endpoint means otlp", env: map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, want: "otlp"},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, want: "none"},
		{name: "console", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, want: "console"},
		{name: "otlp grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, want: "otlp"},
		{name: "otlp http", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, want: "otlp"},
		{name: "sdk disabled", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, want: "none"},
		{name: "invalid exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkinn"},
			wantErr: []string{"OTEL_TRACES_EXPORTER", `"zipkinn"`, "otlp, console or none"}},
		{name: "invalid protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
			wantErr: []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			tel, err := Setup(context.Background(), DefaultConfig(), WithLogWriter(io.Discard))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("Setup succeeded, want an error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tel.exporter != tt.want {
				t.Errorf("exporter = %q, want %q", tel.exporter, tt.want)
			}
			// Spans are made even when not exported, so logs and headers get ids.
			_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "s")
			if !span.SpanContext().IsValid() {
				t.Error("span has no valid context")
			}
			if tt.want == "none" {
				span.End()
			}
			// Nothing was exported (only the none case ended its span), so
			// Shutdown returns at once even without a collector.
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		})
	}
}

func TestNoop(t *testing.T) {
	tel := Noop()
	ctx, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "s")
	tel.Logger.InfoContext(ctx, "nowhere")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var nilTel *Telemetry
	if err := nilTel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestResource(t *testing.T) {
	serviceName := func(t *testing.T) (string, error) {
		t.Helper()
		exp := tracetest.NewInMemoryExporter()
		tel, err := Setup(context.Background(), Config{ServiceName: "iamflow-ingest"}, WithLogWriter(io.Discard), WithSpanExporter(exp))
		if err != nil {
			return "", err
		}
		_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "s")
		span.End()
		spans := exp.GetSpans()
		if len(spans) != 1 {
			t.Fatalf("%d spans exported, want 1", len(spans))
		}
		v, _ := spans[0].Resource.Set().Value("service.name")
		return v.AsString(), nil
	}
	clearOTelEnv(t)
	if got, err := serviceName(t); err != nil || got != "iamflow-ingest" {
		t.Errorf("service.name = %q, %v; want the configured iamflow-ingest", got, err)
	}
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	if got, err := serviceName(t); err != nil || got != "from-env" {
		t.Errorf("service.name = %q, %v; want OTEL_SERVICE_NAME's from-env", got, err)
	}
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=attr,deployment.environment=test")
	if got, err := serviceName(t); err != nil || got != "attr" {
		t.Errorf("service.name = %q, %v; want OTEL_RESOURCE_ATTRIBUTES's attr", got, err)
	}
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "not-a-pair")
	if _, err := serviceName(t); err == nil || !strings.Contains(err.Error(), "OTEL_RESOURCE_ATTRIBUTES") {
		t.Errorf("malformed OTEL_RESOURCE_ATTRIBUTES: err = %v, want one naming the variable", err)
	}
}
