package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
pkg: github.com/iamflow/iamflow/services/replicator
cpu: AMD EPYC
BenchmarkFullReconcileMemory/users=10000-2   	       1	1 ns/op	  20 empty-peak-heap-MB	  10 empty-s	 16 in-sync-peak-heap-MB	 1 in-sync-s
--- BENCH: BenchmarkFullReconcileMemory/users=10000-2
    benchproc_test.go:144: empty: 10000 users
BenchmarkFullReconcileMemory/users=40000-2   	       1	1 ns/op	  80 empty-peak-heap-MB	  160 empty-s	 32 in-sync-peak-heap-MB	 4 in-sync-s
BenchmarkOther-2   	       1	1 ns/op	  80 empty-peak-heap-MB
PASS
`

func TestPlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scaling.svg")
	var out bytes.Buffer
	if err := run(strings.NewReader(sample), &out, "FullReconcileMemory", path); err != nil {
		t.Fatal(err)
	}
	// heap ×4 for users ×4 is linear (1); time ×16 is quadratic (2);
	// in-sync heap ×2 is 0.5.
	for _, want := range []string{"empty-peak-heap-MB: 10000→40000 users 1.00", "empty-s: 10000→40000 users 2.00",
		"in-sync-peak-heap-MB: 10000→40000 users 0.50", "in-sync-s: 10000→40000 users 1.00"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	circles := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, raw)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "circle" {
			circles++
		}
	}
	if circles != 8 { // 2 panels × 2 series × 2 sizes
		t.Errorf("%d points drawn, want 8", circles)
	}
	if !strings.Contains(string(raw), "AMD EPYC") {
		t.Error("the SVG does not name the machine")
	}
}

func TestPlotRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scaling.svg")
	for name, in := range map[string]string{
		"one size":  "BenchmarkFullReconcileMemory/users=10000-2 1 1 ns/op 20 empty-peak-heap-MB\n",
		"no size":   "PASS\n",
		"bad users": "BenchmarkFullReconcileMemory/users=ten-2 1 1 ns/op 20 empty-peak-heap-MB\n",
		"bad value": "BenchmarkFullReconcileMemory/users=10-2 1 1 ns/op x empty-peak-heap-MB\nBenchmarkFullReconcileMemory/users=20-2 1 1 ns/op 1 empty-peak-heap-MB\n",
	} {
		if err := run(strings.NewReader(in), io.Discard, "FullReconcileMemory", path); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("an SVG was written from input that makes no curve")
	}
}
