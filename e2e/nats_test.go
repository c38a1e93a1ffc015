//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iamflow/iamflow/internal/testutil"
)

// natsNode is one nats-server of the stack, and the addresses the test
// holds for it across restarts.
type natsNode struct {
	idx    int
	name   string             // its process
	client *testutil.TCPProxy // where iamflow and the test reach it, whatever port it has now

	mu      sync.Mutex
	mon     string // its monitoring base URL this start
	cluster string // its route listener this start
	cut     bool   // partitioned: its routes stay cut until heal
}

func (n *natsNode) monitor() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mon
}

// route returns the address of its route listener this start.
func (n *natsNode) route() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cluster
}

// setCut marks it partitioned (or healed).
func (n *natsNode) setCut(cut bool) {
	n.mu.Lock()
	n.cut = cut
	n.mu.Unlock()
}

// addNATS registers the NATS servers: one, or a cluster of three.
//
// In a cluster each server reaches each other one through a proxy of its
// own (routes[i][j]), so the test can cut one server off from the others
// (a partition) and heal it, and point the others at a restarted server's
// new route port. Servers tell each other about the routes they know
// (gossip) and would dial those addresses directly, around the proxies; so
// every server advertises "nowhere" (a proxy that closes what it accepts)
// as its route address, and only the configured routes, through the
// proxies, connect. Clients are told the client proxies (client_advertise).
func (s *stackT) addNATS() {
	n := s.shape.natsNodes
	if n <= 1 {
		s.natsProxy = testutil.NewTCPProxy(s.t)
		s.nats = []*natsNode{{name: "nats", client: s.natsProxy}}
		s.add("nats", s.natsBin, "-js", "-sd", filepath.Join(s.dir, "nats"), "-a", "127.0.0.1", "-p", "-1", "-m", "-1",
			"--ports_file_dir", s.dir, "--server_name", "e2e")
		return
	}
	s.nowhere = testutil.NewTCPProxy(s.t)
	s.routes = make([][]*testutil.TCPProxy, n)
	for i := range n {
		s.routes[i] = make([]*testutil.TCPProxy, n)
		for j := range n {
			if i != j {
				s.routes[i][j] = testutil.NewTCPProxy(s.t)
			}
		}
	}
	for i := range n {
		node := &natsNode{idx: i, name: fmt.Sprintf("nats-%d", i+1), client: testutil.NewTCPProxy(s.t)}
		s.nats = append(s.nats, node)
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, "nats://"+s.routes[i][j].Addr())
			}
		}
		s.add(node.name, s.natsBin, "-js", "-sd", filepath.Join(s.dir, node.name), "-a", "127.0.0.1", "-p", "-1", "-m", "-1",
			"--ports_file_dir", s.dir, "--server_name", node.name, "--cluster_name", "e2e",
			"--cluster", "nats://127.0.0.1:-1", "--cluster_advertise", s.nowhere.Addr(),
			"--client_advertise", node.client.Addr(), "--routes", strings.Join(routes, ","))
	}
}

func (s *stackT) clustered() bool { return len(s.nats) > 1 }

// natsAddrs are the client addresses of the NATS servers (the proxies).
func (s *stackT) natsAddrs() []string {
	var out []string
	for _, n := range s.nats {
		out = append(out, n.client.Addr())
	}
	return out
}

// natsURL is every server's client URL, comma-separated, as nats.Connect
// takes them.
func (s *stackT) natsURL() string {
	var out []string
	for _, a := range s.natsAddrs() {
		out = append(out, "nats://"+a)
	}
	return strings.Join(out, ",")
}

// streamReplicas is nats.streams.replicas: one per server.
func (s *stackT) streamReplicas() int { return len(s.nats) }

// startAllNATS starts every server and waits until JetStream is ready on
// each (in a cluster: a meta leader elected and every server current).
func (s *stackT) startAllNATS() {
	for i := range s.nats {
		s.startNode(i)
	}
	if !s.clustered() {
		return
	}
	for i := range s.nats {
		if err := s.waitCurrent(i, 2*time.Minute); err != nil {
			s.t.Fatal(err)
		}
	}
}

// startNode starts server i, learns its ports from its ports file, points
// its proxies at them (the client proxy, and in a cluster the others'
// routes to it, unless it is partitioned), and waits until it answers with
// JetStream enabled. It does not wait for a cluster member to catch up
// (waitCurrent).
func (s *stackT) startNode(i int) {
	t, node := s.t, s.nats[i]
	p := s.procs[node.name]
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	var l natsListeners
	if err := waitFor(30*time.Second, 20*time.Millisecond, func() error {
		var err error
		l, err = natsPorts(s.dir, s.natsBin, p.pid(), s.clustered())
		return err
	}); err != nil {
		t.Fatalf("%s's ports: %v\n%s", node.name, err, p.tail(20))
	}
	node.mu.Lock()
	node.mon, node.cluster = l.monitor, l.cluster
	cut := node.cut
	node.mu.Unlock()
	node.client.Point(l.client)
	if s.clustered() && !cut {
		for j := range s.nats {
			if j != i {
				s.routes[j][i].Point(l.cluster)
			}
		}
	}
	if err := waitFor(60*time.Second, 20*time.Millisecond, func() error { return httpOK(l.monitor + "/healthz?js-enabled-only=true") }); err != nil {
		t.Fatalf("%s not ready: %v\n%s", node.name, err, p.tail(20))
	}
}

// stopNode ends server i with sig (SIGKILL, or SIGTERM for a clean
// shutdown) and cuts everything that reached it: its clients and the
// other servers' routes to it find a closed port until it starts again.
func (s *stackT) stopNode(i int, sig syscall.Signal) {
	node := s.nats[i]
	s.procs[node.name].signal(sig, 30*time.Second)
	node.client.Cut("")
	for j := range s.nats {
		if j != i && s.clustered() {
			s.routes[j][i].Cut("")
		}
	}
}

// partition cuts server i off from the other servers, both ways; its
// clients stay connected to it (it is the network between the servers
// that fails).
func (s *stackT) partition(i int) {
	s.nats[i].setCut(true)
	for j := range s.nats {
		if j != i {
			s.routes[i][j].Cut("")
			s.routes[j][i].Cut("")
		}
	}
}

// heal reconnects server i to the others.
func (s *stackT) heal(i int) {
	s.nats[i].setCut(false)
	for j := range s.nats {
		if j != i {
			s.routes[i][j].Point(s.nats[j].route())
			s.routes[j][i].Point(s.nats[i].route())
		}
	}
}

// waitCurrent waits until server i is back in service: it reports itself
// healthy (nats-server's /healthz: connected, a meta leader known, what it
// holds caught up), another server sees a leader for every stream with
// every replica current, and server i itself answers JetStream requests
// for them (what its clients need). /healthz alone is not enough: a server
// just healed from a partition reports healthy before it serves again.
func (s *stackT) waitCurrent(i int, total time.Duration) error {
	node := s.nats[i]
	ctx, cancel := context.WithTimeout(context.Background(), total)
	defer cancel()
	err := waitFor(total, 50*time.Millisecond, func() error {
		if err := httpOK(node.monitor() + "/healthz"); err != nil {
			return err
		}
		if !s.clustered() {
			return nil
		}
		infos, err := s.streamInfos(ctx, (i+1)%len(s.nats))
		if err != nil {
			return fmt.Errorf("stream list: %w", err)
		}
		for _, in := range infos {
			if err := replicasCurrent(in); err != nil {
				return err
			}
			if _, err := s.streamLeader(ctx, i, in.Config.Name); err != nil {
				return fmt.Errorf("%s through %s: %w", in.Config.Name, node.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s did not catch up: %w\n%s", node.name, err, s.procs[node.name].tail(20))
	}
	return nil
}

// replicasCurrent says whether a stream has a leader and every replica is
// current.
func replicasCurrent(in *jetstream.StreamInfo) error {
	if in.Cluster == nil || in.Cluster.Leader == "" {
		return fmt.Errorf("stream %s has no leader", in.Config.Name)
	}
	for _, r := range in.Cluster.Replicas {
		if !r.Current || r.Offline {
			return fmt.Errorf("stream %s: replica %s not current (lag %d)", in.Config.Name, r.Name, r.Lag)
		}
	}
	return nil
}

// jsVia is a JetStream context on a connection to server i alone (no
// reconnect, no discovered servers): what it answers is what that server
// can do.
func (s *stackT) jsVia(i int) (jetstream.JetStream, func(), error) {
	nc, err := nats.Connect("nats://"+s.nats[i].client.Addr(), nats.Name("e2e-checker"), nats.IgnoreDiscoveredServers(),
		nats.NoReconnect(), nats.Timeout(2*time.Second))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// streamInfos lists every stream with its configuration and cluster state,
// through server i (JetStream's API).
func (s *stackT) streamInfos(ctx context.Context, i int) ([]*jetstream.StreamInfo, error) {
	js, done, err := s.jsVia(i)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out []*jetstream.StreamInfo
	l := js.ListStreams(ctx)
	for info := range l.Info() {
		out = append(out, info)
	}
	if err := l.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *jetstream.StreamInfo) int { return strings.Compare(a.Config.Name, b.Config.Name) })
	return out, nil
}

// leaders returns each stream's leader (a server name) as server i sees it.
func (s *stackT) leaders(ctx context.Context, i int) (map[string]string, error) {
	infos, err := s.streamInfos(ctx, i)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, in := range infos {
		if in.Cluster != nil {
			out[in.Config.Name] = in.Cluster.Leader
		}
	}
	return out, nil
}

// streamLeader asks server i for one stream's leader ("" if none).
func (s *stackT) streamLeader(ctx context.Context, i int, stream string) (string, error) {
	js, done, err := s.jsVia(i)
	if err != nil {
		return "", err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info := st.CachedInfo()
	if info.Cluster == nil {
		return "", fmt.Errorf("stream %s: no cluster information", stream)
	}
	return info.Cluster.Leader, nil
}

// metaLeader is the JetStream meta leader as server i's monitoring
// endpoint reports it.
func (s *stackT) metaLeader(ctx context.Context, i int) (string, error) {
	var jsz struct {
		Meta struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := getJSON(ctx, s.nats[i].monitor()+"/jsz", &jsz); err != nil {
		return "", err
	}
	if jsz.Meta.Leader == "" {
		return "", fmt.Errorf("%s knows no meta leader", s.nats[i].name)
	}
	return jsz.Meta.Leader, nil
}

// clientsOf returns the names of the iamflow processes connected to server
// i (its monitoring's /connz), sorted.
func (s *stackT) clientsOf(ctx context.Context, i int) ([]string, error) {
	var connz struct {
		Connections []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := getJSON(ctx, s.nats[i].monitor()+"/connz?limit=10000", &connz); err != nil {
		return nil, err
	}
	var out []string
	for _, c := range connz.Connections {
		if _, ok := s.procs[c.Name]; ok {
			out = append(out, c.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// nodeIndex returns the index of the server named name.
func (s *stackT) nodeIndex(name string) int {
	for i, n := range s.nats {
		if n.name == name {
			return i
		}
	}
	return -1
}

// checkReplication checks that every stream and KV bucket iamflow made has
// one replica per server, every replica current, and returns a summary.
func (s *stackT) checkReplication(ctx context.Context) string {
	t := s.t
	var infos []*jetstream.StreamInfo
	err := waitFor(time.Minute, 500*time.Millisecond, func() error {
		var err error
		infos, err = s.streamInfos(ctx, 0)
		if err != nil {
			return err
		}
		for _, in := range infos {
			if err := replicasCurrent(in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("the streams did not all have a leader and current replicas: %v", err)
	}
	var names, bad []string
	for _, in := range infos {
		names = append(names, fmt.Sprintf("%s %d msgs %d B", in.Config.Name, in.State.Msgs, in.State.Bytes))
		if in.Config.Replicas != s.streamReplicas() {
			bad = append(bad, fmt.Sprintf("%s has %d replicas", in.Config.Name, in.Config.Replicas))
		}
	}
	if len(bad) > 0 {
		t.Errorf("nats.streams.replicas is %d, but %s", s.streamReplicas(), strings.Join(bad, ", "))
	}
	return fmt.Sprintf("%d streams and buckets, each with %d replicas (size of one replica): %s", len(infos), s.streamReplicas(), strings.Join(names, ", "))
}
