package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/testutil"
)

// testCluster is three JetStream servers in this process, on random
// ports, whose routes run through proxies.
type testCluster struct {
	srvs   []*server.Server
	routes [3][3]*testutil.TCPProxy // routes[i][j]: server i's route to server j
}

func startCluster(t testing.TB) *testCluster {
	t.Helper()
	c := &testCluster{}
	// Route addresses a server learns from the others lead nowhere: every
	// route runs through the proxies.
	nowhere := testutil.NewTCPProxy(t)
	for i := range 3 {
		for j := range 3 {
			if i != j {
				c.routes[i][j] = testutil.NewTCPProxy(t)
			}
		}
	}
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, "nats://"+c.routes[i][j].Addr())
			}
		}
		srv, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{Name: "failover", Host: "127.0.0.1", Port: server.RANDOM_PORT,
				Advertise: nowhere.Addr()},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		t.Cleanup(func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		})
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server n%d not ready", i)
		}
		c.srvs = append(c.srvs, srv)
	}
	for i := range 3 {
		for j := range 3 {
			if i != j {
				c.routes[i][j].Point(c.srvs[j].ClusterAddr().String())
			}
		}
	}
	return c
}

// urls are the servers' client URLs, n0 first.
func (c *testCluster) urls() []string {
	var out []string
	for _, s := range c.srvs {
		out = append(out, s.ClientURL())
	}
	return out
}

// partition cuts server i off from the others; its clients stay connected.
func (c *testCluster) partition(i int) {
	for j := range 3 {
		if j != i {
			c.routes[i][j].Cut("")
			c.routes[j][i].Cut("")
		}
	}
}

// openClustered opens a bus on the cluster, connected to n0 first, with
// streams of three replicas, once the cluster has formed.
func openClustered(t testing.TB, c *testCluster, reg prometheus.Registerer, log *testutil.SyncBuffer) *bus.Bus {
	t.Helper()
	cfg := bus.DefaultConfig()
	cfg.URLs = c.urls()
	cfg.Streams.Replicas = 3
	cfg.Streams.Storage = bus.StorageMemory
	cfg.FailoverAfter = time.Second
	var b *bus.Bus
	testutil.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		b, err = bus.Open(ctx, cfg, bus.WithRegisterer(reg), bus.WithLogger(slog.New(slog.NewTextHandler(log, nil))),
			bus.WithNATSOptions(nats.DontRandomize(), nats.ReconnectWait(100*time.Millisecond)))
		return err
	})
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// works is nil when a publish to IAM_EVENTS and a put to kv both succeed
// within a second each.
func works(b *bus.Bus, kv jetstream.KeyValue, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	msg := nats.NewMsg(testSubject)
	msg.Data = []byte("after the partition")
	if _, err := b.Publish(ctx, msg, fmt.Sprintf("failover-%d", n)); err != nil {
		return err
	}
	_, err := kv.Put(ctx, "k", []byte("v"))
	return err
}

// A client of a server cut off from the rest of its cluster stays
// connected to it (TCP is fine) and JetStream fails: once it has failed for
// failover_after, and another server answers, the bus reconnects to it, and
// the client publishes and writes KV again long before the partition heals
// (here: never). Then, with no server serving JetStream (quorum lost), the
// bus stays where it is: no reconnect loop.
func TestFailoverLeavesAPartitionedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server JetStream cluster, its elections and a lost quorum: about 35 s")
	}
	c := startCluster(t)
	reg := prometheus.NewRegistry()
	var log testutil.SyncBuffer
	b := openClustered(t, c, reg, &log)
	if got := b.Conn().ConnectedServerName(); got != "n0" {
		t.Fatalf("connected to %s, want n0 (the first URL)", got)
	}
	ctx := testContext(t)
	kv, err := b.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "failover", Replicas: 3, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if err := works(b, kv, 0); err != nil {
		t.Fatalf("before the partition: %v", err)
	}

	c.partition(0)
	cut := time.Now()
	// The first failure: the client is still on n0, cut off.
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if works(b, kv, 1) == nil {
			return errors.New("JetStream still works through n0")
		}
		return nil
	})
	n := 2
	testutil.CheckFor(t, 25*time.Second, 50*time.Millisecond, func() error {
		n++
		return works(b, kv, n)
	})
	t.Logf("JetStream works again %v after the partition, through %s", time.Since(cut).Round(time.Millisecond), b.Conn().ConnectedServerName())
	if got := b.Conn().ConnectedServerName(); got == "n0" {
		t.Fatalf("still connected to n0 (cut off), yet JetStream works")
	}
	reconnected := map[string]string{"result": "reconnected"}
	if got := metricValue(t, reg, "iamflow_bus_failover_checks_total", reconnected); got != 1 {
		t.Fatalf("%v forced reconnects, want 1", got)
	}

	// The other healthy server goes: n0 (cut off) and the one left have no
	// quorum, nobody serves JetStream, and moving cannot help. (The server
	// left serves as a leader for a while, until it notices it lost its
	// quorum: about 20 s.)
	here := 2
	if b.Conn().ConnectedServerName() == "n1" {
		here = 1
	}
	other := 3 - here
	c.srvs[other].Shutdown()
	stayed := map[string]string{"result": "stayed"}
	testutil.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		_ = works(b, kv, 0) // JetStream is asked, and fails
		if got := metricValue(t, reg, "iamflow_bus_failover_checks_total", stayed); got < 2 {
			return fmt.Errorf("%v checks found no better server, want 2", got)
		}
		return nil
	})
	if got := metricValue(t, reg, "iamflow_bus_failover_checks_total", reconnected); got != 1 {
		t.Fatalf("%v forced reconnects with the whole cluster down, want still 1", got)
	}
	if got := b.Conn().ConnectedServerName(); got != fmt.Sprintf("n%d", here) {
		t.Fatalf("moved to %s with the whole cluster down", got)
	}
	// The reconnect is said once, with the reason; staying is said too
	// (again only if JetStream worked in between).
	text := log.String()
	if n := strings.Count(text, "while another serves it (this one is likely cut off from its cluster); reconnecting"); n != 1 {
		t.Errorf("the reconnect logged %d times, want once:\n%s", n, text)
	}
	if !strings.Contains(text, "no other server serves it either; staying") {
		t.Errorf("staying not logged:\n%s", text)
	}
	if !strings.Contains(text, "server=n0") || !strings.Contains(text, "error=") {
		t.Errorf("the reconnect is logged without the server or the reason:\n%s", text)
	}
}
