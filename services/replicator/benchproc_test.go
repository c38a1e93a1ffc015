package replicator

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	emu "github.com/iamflow/iamflow/emulator/identitydomain"
	"github.com/iamflow/iamflow/internal/bus/bustest"
	"github.com/iamflow/iamflow/internal/pipelinetest"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// BenchmarkFullReconcileMemory is BenchmarkFullReconcile with the emulated
// domains in processes of their own (`iamflow emulate identity-domain`), so
// the heap measured is the replicator's (and the embedded JetStream's) alone:
// the peak while reconciling, and what is still live after a GC at the end.
// Baseline: the heap in use before the reconcile, same run.
func BenchmarkFullReconcileMemory(b *testing.B) {
	gen := "50000,5000,200000"
	if testing.Short() {
		gen = "2000,200,8000"
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "iamflow")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/iamflow").CombinedOutput(); err != nil {
		b.Fatalf("build iamflow: %v\n%s", err, out)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(pipelinetest.IamflowSecret), 0o600); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		b.StopTimer()
		srcURL := startEmulatorProcess(b, bin, secretFile, "src", gen)
		tgtURL := startEmulatorProcess(b, bin, secretFile, "tgt", "")
		srv := bustest.RunServer(b)
		bs := srv.Open(b)
		clients := map[string]Domain{}
		for name, url := range map[string]string{"src": srcURL, "tgt": tgtURL} {
			clients[name] = newClientURL(b, name, url, pipelinetest.IamflowClientID, pipelinetest.IamflowSecret, false)
		}
		svc, err := New(context.Background(), config(link("hub", "src", "tgt")), bs, clients, servicekit.WithLogger(pipelinetest.Logger(b)))
		if err != nil {
			b.Fatal(err)
		}
		for _, phase := range []string{"empty", "in-sync"} {
			c0 := processCalls(b, srcURL) + processCalls(b, tgtURL)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapInuse
			peak := watchHeap()
			b.StartTimer()
			start := time.Now()
			reps, err := svc.ReconcileLink(context.Background(), "hub", false)
			took := time.Since(start)
			b.StopTimer()
			p := peak()
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(took.Seconds(), phase+"-s")
			b.ReportMetric(float64(processCalls(b, srcURL)+processCalls(b, tgtURL)-c0), phase+"-calls")
			b.ReportMetric(float64(base)/(1<<20), phase+"-baseline-heap-MB")
			b.ReportMetric(float64(base+p)/(1<<20), phase+"-peak-heap-MB")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), phase+"-after-gc-heap-MB")
			b.Logf("%s: %d users, %d groups in %v, actions %v", phase, reps[0].GetSourceUsers(), reps[0].GetSourceGroups(),
				took.Round(time.Millisecond), reps[0].GetActions())
		}
	}
}

// startEmulatorProcess runs `iamflow emulate identity-domain NAME` (with a
// generated directory when gen is set) and returns its URL.
func startEmulatorProcess(b *testing.B, bin, secretFile, name, gen string) string {
	b.Helper()
	args := []string{"emulate", "identity-domain", "--addr", "127.0.0.1:0", "--tier", "unlimited",
		"--client-id", pipelinetest.IamflowClientID, "--client-secret", "file:" + secretFile}
	if gen != "" {
		args = append(args, "--generate", gen)
	}
	cmd := exec.Command(bin, append(args, name)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	re := regexp.MustCompile(`identity domain \S+\s+(http://\S+)`)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() { // keep the pipe drained
				}
			}()
			return m[1]
		}
	}
	b.Fatalf("emulator %s printed no URL", name)
	return ""
}

// processCalls reads an emulator process's API call count (tokens excepted).
func processCalls(b *testing.B, url string) int64 {
	b.Helper()
	resp, err := http.Get(url + "/_emulator/stats")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var st emu.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		b.Fatal(err)
	}
	var n int64
	for op, c := range st.Calls {
		if op != emu.OpToken {
			n += c
		}
	}
	return n
}
