package apiclient

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestBackoffIsFullJitterUnderADoublingCap(t *testing.T) {
	r := RetryConfig{MaxAttempts: 6, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for n, wantCap := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		if got := r.Backoff(n, func() float64 { return 0.999999 }); got > wantCap || got < wantCap*99/100 {
			t.Errorf("Backoff(%d) at the top = %v, want just under %v", n, got, wantCap)
		}
		if got := r.Backoff(n, func() float64 { return 0 }); got != 0 {
			t.Errorf("Backoff(%d) at the bottom = %v, want 0", n, got)
		}
	}
}

func TestRetryValidateQuotesTheDefaults(t *testing.T) {
	def := RetryConfig{MaxAttempts: 5, BaseDelay: 250 * time.Millisecond, MaxDelay: 10 * time.Second}
	if errs := def.Validate(def); len(errs) != 0 {
		t.Fatalf("defaults refused: %v", errs)
	}
	errs := RetryConfig{MaxAttempts: 0, BaseDelay: 0, MaxDelay: -time.Second}.Validate(def)
	got := errors.Join(errs...).Error()
	for _, want := range []string{"retry.max_attempts: 0", "default 5", "retry.base_delay: 0s", "default 250ms", "retry.max_delay: -1s", "default 10s"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep after cancel = %v", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}
}

func TestRegisterSharesAndKeepsTheFirstError(t *testing.T) {
	reg := prometheus.NewRegistry()
	var err error
	a := Register(reg, &err, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	b := Register(reg, &err, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	if err != nil || a != b {
		t.Fatalf("second registration: err %v, shared %v", err, a == b)
	}
	Register(reg, &err, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other"}))
	first := err
	Register(reg, &err, prometheus.NewGauge(prometheus.GaugeOpts{Name: "y", Help: "y"}))
	if first == nil || err != first {
		t.Fatalf("conflicting registration: err %v (first %v)", err, first)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "::1": true, "10.0.0.1": false, "example.com": false} {
		if IsLoopback(host) != want {
			t.Errorf("IsLoopback(%q) = %v", host, !want)
		}
	}
}

func TestRequestMetricsAreNamedByPrefixAndShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := RequestMetricsOpts{Prefix: "x", Label: "database", RequestsHelp: "r", SecondsHelp: "s", RetriesHelp: "t", Buckets: []float64{1}}
	var err error
	a := NewRequestMetrics(reg, &err, o)
	b := NewRequestMetrics(reg, &err, o)
	if err != nil || a.Requests != b.Requests || a.Seconds != b.Seconds || a.Retries != b.Retries {
		t.Fatalf("second client: err %v, shared %v", err, a.Requests == b.Requests)
	}
	a.Requests.WithLabelValues("hr", "query", "200").Inc()
	a.Seconds.WithLabelValues("hr", "query").Observe(0.5)
	a.Retries.WithLabelValues("hr", "query", "network").Inc()
	mfs, gerr := reg.Gather()
	if gerr != nil {
		t.Fatal(gerr)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		var labels []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		if !slices.Contains(labels, "database=hr") || !slices.Contains(labels, "op=query") {
			t.Errorf("%s: labels %v, want database=hr and op=query", mf.GetName(), labels)
		}
	}
	if got := strings.Join(names, ","); got != "x_request_seconds,x_requests_total,x_retries_total" {
		t.Fatalf("metrics %s", got)
	}
}
