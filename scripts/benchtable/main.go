// Command benchtable turns `go test -bench` output into Markdown tables, one
// row per benchmark and one column per reported metric, headed by the
// machine the benchmarks ran on. `make bench` pipes into it:
//
//	go test -run '^$' -bench . ./... | go run ./scripts/benchtable
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// result is one benchmark line: its name and metrics in the order given.
type result struct {
	name    string
	units   []string
	values  map[string]string
	pkg     string
	comment []string
}

func run(in io.Reader, out io.Writer) error {
	results, cpu, err := parse(in)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("no benchmark results in the input")
	}
	fmt.Fprintf(out, "Machine: %s, %d logical CPUs, %s/%s, %s; %s\n\n", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	byPkg := map[string][]*result{}
	var order []string
	for _, r := range results {
		if _, ok := byPkg[r.pkg]; !ok {
			order = append(order, r.pkg)
		}
		byPkg[r.pkg] = append(byPkg[r.pkg], r)
	}
	for _, p := range order {
		fmt.Fprintf(out, "### %s\n\n", p)
		for _, r := range byPkg[p] {
			writeResult(out, r)
		}
	}
	return nil
}

// parse reads the benchmark lines of in, each with its package and the
// b.Log lines under it, and the cpu the benchmarks ran on.
func parse(in io.Reader) (results []*result, cpu string, err error) {
	var (
		pkg  string
		last *result
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case strings.HasPrefix(line, "cpu: "):
			cpu = strings.TrimPrefix(line, "cpu: ")
		case strings.HasPrefix(line, "Benchmark"):
			r := parseLine(line)
			if r == nil {
				continue
			}
			r.pkg = pkg
			results = append(results, r)
			last = r
		case last != nil && strings.HasPrefix(line, "    ") && strings.Contains(line, "_test.go:"):
			last.comment = append(last.comment, strings.TrimSpace(line)) // the benchmark's b.Log lines
		case last != nil && len(last.comment) > 0 && strings.HasPrefix(line, "        "):
			// The next line of a multi-line b.Log.
			last.comment[len(last.comment)-1] += "\n" + strings.TrimPrefix(line, "        ")
		}
	}
	return results, cpu, sc.Err()
}

// writeResult writes one benchmark's table and its b.Log lines.
func writeResult(out io.Writer, r *result) {
	fmt.Fprintf(out, "**%s**\n\n| metric | value |\n|---|---|\n", r.name)
	for _, u := range r.units {
		fmt.Fprintf(out, "| %s | %s |\n", u, r.values[u])
	}
	for _, c := range r.comment {
		if strings.Contains(c, "\n") {
			fmt.Fprintf(out, "\n```\n%s\n```\n", c)
		} else {
			fmt.Fprintf(out, "\n> %s\n", c)
		}
	}
	fmt.Fprintln(out)
}

// parseLine reads "BenchmarkX-2  1  123 ns/op  4.5 p99-ms ...".
func parseLine(line string) *result {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 {
		return nil
	}
	r := &result{name: strings.TrimPrefix(f[0], "Benchmark"), values: map[string]string{}}
	r.units = append(r.units, "iterations")
	r.values["iterations"] = f[1]
	for i := 2; i+1 < len(f); i += 2 {
		r.units = append(r.units, f[i+1])
		r.values[f[i+1]] = f[i]
	}
	return r
}
