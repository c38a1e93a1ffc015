package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	in := `goos: linux
pkg: github.com/iamflow/iamflow/services/replicator
cpu: AMD EPYC
BenchmarkEventToTarget-2   	       1	1258338580 ns/op	         1.048 baseline-create-p50-ms	         3.873 p50-ms
--- BENCH: BenchmarkEventToTarget-2
    bench_test.go:181: empty: 50000 in 1m25s
garbage line
BenchmarkBroken-2 1 2
PASS
`
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Machine: AMD EPYC", "### github.com/iamflow/iamflow/services/replicator", "**EventToTarget-2**",
		"| baseline-create-p50-ms | 1.048 |", "| p50-ms | 3.873 |", "> bench_test.go:181: empty: 50000 in 1m25s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "Broken") {
		t.Errorf("a malformed line made a row:\n%s", out.String())
	}
	if err := run(strings.NewReader("PASS\n"), &out); err == nil {
		t.Error("no results: want an error")
	}
}
