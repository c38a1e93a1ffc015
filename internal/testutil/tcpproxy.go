package testutil

import (
	"io"
	"net"
	"sync"
	"testing"
)

// TCPProxy is a loopback TCP address that stays bound for the whole test
// and forwards to whatever is behind it now. A server behind one can take
// a fresh port of its own choosing at every start (nothing is reserved and
// released, so nothing else can take it in between) while its clients keep
// the one address, as they keep a DNS name in production; routes between
// servers through proxies can be cut to partition a cluster. With no
// upstream, a connection is accepted and closed at once, as a dead
// server's port would refuse it.
type TCPProxy struct {
	ln net.Listener

	mu       sync.Mutex
	upstream string
	conns    map[net.Conn]bool
}

// NewTCPProxy starts a proxy with no upstream; it closes when the test ends.
func NewTCPProxy(t testing.TB) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &TCPProxy{ln: ln, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut("")
	})
	return p
}

// Addr is the proxy's address.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection and points the proxy at upstream ("" for
// none).
func (p *TCPProxy) Cut(upstream string) {
	p.mu.Lock()
	p.upstream = upstream
	conns := p.conns
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Point sets the upstream for new connections.
func (p *TCPProxy) Point(upstream string) {
	p.mu.Lock()
	p.upstream = upstream
	p.mu.Unlock()
}

func (p *TCPProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *TCPProxy) forward(down net.Conn) {
	p.mu.Lock()
	upstream := p.upstream
	p.mu.Unlock()
	if upstream == "" {
		down.Close()
		return
	}
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		down.Close()
		return
	}
	p.mu.Lock()
	if p.upstream != upstream { // cut meanwhile
		p.mu.Unlock()
		up.Close()
		down.Close()
		return
	}
	p.conns[down], p.conns[up] = true, true
	p.mu.Unlock()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src) // EOF, a reset or a cut end the pair alike
		dst.Close()
		src.Close()
	}
	wg.Add(2)
	go pipe(up, down)
	go pipe(down, up)
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, down)
	delete(p.conns, up)
	p.mu.Unlock()
}
