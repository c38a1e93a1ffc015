// Command benchplot turns the scaling curve of the full reconcile
// (BenchmarkFullReconcileMemory/users=N in `go test -bench` output) into an
// SVG plot: peak heap and wall time against users, both on log-log axes,
// into an empty and into an in-sync target, beside a linear guide. It also
// prints the growth exponents (log-log slopes between consecutive sizes).
// `make bench` runs it on bench.out:
//
//	go run ./scripts/benchplot -o docs/scaling.svg < bench.out
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	outPath := flag.String("o", "docs/scaling.svg", "where to write the SVG")
	bench := flag.String("bench", "FullReconcileMemory", "the benchmark whose users=N sub-benchmarks make the curve")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *bench, *outPath); err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}

// point is one size of the curve: its users and metrics by unit.
type point struct {
	users   float64
	metrics map[string]float64
}

// series is one line of a panel: a metric of each point.
type series struct {
	label, unit, color string
}

// panel is one chart: its title and the series it draws.
type panel struct {
	title  string
	series []series
}

var panels = []panel{
	{"peak heap of the replicator (MB)", []series{
		{"into an empty target", "empty-peak-heap-MB", "#c0392b"},
		{"into an in-sync target", "in-sync-peak-heap-MB", "#2471a3"},
	}},
	{"wall time (s)", []series{
		{"into an empty target", "empty-s", "#c0392b"},
		{"into an in-sync target", "in-sync-s", "#2471a3"},
	}},
}

func run(in io.Reader, out io.Writer, bench, outPath string) error {
	pts, cpu, err := parse(in, bench)
	if err != nil {
		return err
	}
	if len(pts) < 2 {
		return fmt.Errorf("%d sizes of %s/users=N in the input: a curve needs two", len(pts), bench)
	}
	for _, line := range exponents(pts) {
		fmt.Fprintln(out, line)
	}
	svg := plot(pts, cpu)
	if err := os.WriteFile(outPath, []byte(svg), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", outPath, err)
	}
	fmt.Fprintf(out, "wrote %s\n", outPath)
	return nil
}

// parse reads the bench's users=N lines (the last line of a size wins) and
// the cpu they ran on; points come sorted by users.
func parse(in io.Reader, bench string) ([]point, string, error) {
	prefix := "Benchmark" + bench + "/users="
	bySize := map[float64]point{}
	var cpu string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = strings.TrimSpace(c)
			continue
		}
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a "--- BENCH" header or a broken line
		}
		size, _, _ := strings.Cut(f[0], "-") // users=N-GOMAXPROCS
		users, err := strconv.ParseFloat(size, 64)
		if err != nil || users <= 0 {
			return nil, "", fmt.Errorf("%s%s: users %q is not a positive number", prefix, f[0], size)
		}
		p := point{users: users, metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, "", fmt.Errorf("%s%s: metric %s: %w", prefix, f[0], f[i+1], err)
			}
			p.metrics[f[i+1]] = v
		}
		bySize[users] = p
	}
	if err := sc.Err(); err != nil {
		return nil, "", err
	}
	pts := make([]point, 0, len(bySize))
	for _, p := range bySize {
		pts = append(pts, p)
	}
	slices.SortFunc(pts, func(a, b point) int { return int(a.users - b.users) })
	return pts, cpu, nil
}

// exponents are the log-log slopes of every plotted metric between
// consecutive sizes (1 is linear).
func exponents(pts []point) []string {
	var lines []string
	for _, pn := range panels {
		for _, s := range pn.series {
			var parts []string
			for i := 1; i < len(pts); i++ {
				a, z := pts[i-1], pts[i]
				parts = append(parts, fmt.Sprintf("%g→%g users %.2f", a.users, z.users, slope(a.users, z.users, a.metrics[s.unit], z.metrics[s.unit])))
			}
			lines = append(lines, fmt.Sprintf("growth exponent of %s: %s", s.unit, strings.Join(parts, ", ")))
		}
	}
	return lines
}

func slope(x0, x1, y0, y1 float64) float64 {
	if x0 <= 0 || x1 <= 0 || y0 <= 0 || y1 <= 0 || x0 == x1 {
		return math.NaN()
	}
	return math.Log(y1/y0) / math.Log(x1/x0)
}

// Layout of the SVG, in pixels.
const (
	panelW, panelH = 420.0, 300.0
	marginL        = 60.0
	marginT        = 40.0
	plotW, plotH   = panelW - marginL - 20, panelH - marginT - 70
)

// plot draws the panels side by side.
func plot(pts []point, cpu string) string {
	var b strings.Builder
	w := panelW * float64(len(panels))
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n",
		w, panelH+20, w, panelH+20)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, pn := range panels {
		drawPanel(&b, float64(i)*panelW, pn, pts)
	}
	fmt.Fprintf(&b, `<text x="10" y="%.0f" fill="#555">Full reconcile scaling, log-log; dashed grey: linear growth from the smallest size. %s</text>`+"\n",
		panelH+12, html.EscapeString(cpu))
	b.WriteString("</svg>\n")
	return b.String()
}

// drawPanel draws one panel at x offset ox.
func drawPanel(b *strings.Builder, ox float64, pn panel, pts []point) {
	xs := make([]float64, len(pts))
	var ys []float64
	for i, p := range pts {
		xs[i] = p.users
		for _, s := range pn.series {
			if v := p.metrics[s.unit]; v > 0 {
				ys = append(ys, v)
			}
		}
	}
	x0, x1 := decades(xs)
	y0, y1 := decades(ys)
	sx := func(v float64) float64 { return ox + marginL + plotW*(math.Log10(v)-x0)/(x1-x0) }
	sy := func(v float64) float64 { return marginT + plotH - plotH*(math.Log10(v)-y0)/(y1-y0) }
	fmt.Fprintf(b, `<text x="%.1f" y="20" font-size="13" font-weight="bold">%s</text>`+"\n", ox+marginL, html.EscapeString(pn.title))
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`+"\n", ox+marginL, marginT, plotW, plotH)
	for e := x0; e <= x1; e++ {
		x := sx(math.Pow(10, e))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, marginT, x, marginT+plotH)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, marginT+plotH+14, human(math.Pow(10, e)))
	}
	for e := y0; e <= y1; e++ {
		y := sy(math.Pow(10, e))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", ox+marginL, y, ox+marginL+plotW, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", ox+marginL-4, y+4, human(math.Pow(10, e)))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">users</text>`+"\n", ox+marginL+plotW/2, marginT+plotH+28)
	for i, s := range pn.series {
		var coords []string
		first := -1.0
		for _, p := range pts {
			v := p.metrics[s.unit]
			if v <= 0 {
				continue
			}
			if first < 0 {
				first = v
				// The linear guide: v grows as users from the smallest size.
				last := pts[len(pts)-1].users
				fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#aaa" stroke-dasharray="4 3"/>`+"\n",
					sx(p.users), sy(v), sx(last), sy(v*last/p.users))
			}
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", sx(p.users), sy(v)))
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%g users: %s %g</title></circle>`+"\n",
				sx(p.users), sy(v), s.color, p.users, s.unit, v)
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(coords, " "), s.color)
		ly := marginT + plotH + 44 + float64(i)*14
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", ox+marginL, ly-4, ox+marginL+20, ly-4, s.color)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", ox+marginL+26, ly, html.EscapeString(s.label))
	}
}

// decades is the range of whole powers of ten that holds vs, as exponents.
func decades(vs []float64) (float64, float64) {
	if len(vs) == 0 {
		return 0, 1
	}
	lo, hi := math.Floor(math.Log10(slices.Min(vs))), math.Ceil(math.Log10(slices.Max(vs)))
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// human writes a power of ten briefly: 0.1, 1, 10, 1k, 1M.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
