package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// specialBlock is one line of testdata/special-purpose-addresses.txt.
type specialBlock struct {
	prefix   netip.Prefix
	decision string // refuse or embedded
	name     string
}

func readSpecialBlocks(t *testing.T) []specialBlock {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "special-purpose-addresses.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []specialBlock
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		p, err := netip.ParsePrefix(fields[0])
		if err != nil || len(fields) < 3 || (fields[1] != "refuse" && fields[1] != "embedded") {
			t.Fatalf("line %d: %q is not `block refuse|embedded name`", n, line)
		}
		out = append(out, specialBlock{p, fields[1], strings.Join(fields[2:], " ")})
	}
	if len(out) < 50 {
		t.Fatalf("only %d blocks in the table", len(out))
	}
	return out
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// midAddr is an address inside p away from both ends: the first address
// with the bit after the prefix set, plus one.
func midAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	if p.Bits() < len(b)*8 {
		b[p.Bits()/8] |= 0x80 >> (p.Bits() % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	if n := a.Next(); n.IsValid() && p.Contains(n) {
		return n
	}
	return a
}

// public are addresses a confirmation may be fetched from (OCI's, and
// other public services), in every form that carries them.
var public = []string{
	"140.91.10.20", "138.1.0.1", "8.8.8.8", "1.1.1.1", "193.122.0.1",
	"2603:c020:4005::1", "2606:4700:4700::1111", "2001:4860:4860::8888",
}

// TestDialFilterAgainstTheSpecialPurposeRegistries checks the connection
// filter of the confirmation fetch against every special-purpose block:
// its first, middle and last addresses are refused, in IPv4-mapped, NAT64
// and 6to4 form too, and public addresses pass in every form.
func TestDialFilterAgainstTheSpecialPurposeRegistries(t *testing.T) {
	blocks := readSpecialBlocks(t)
	embed := map[string]func(v4 netip.Addr) netip.Addr{
		"IPv4-mapped": func(v4 netip.Addr) netip.Addr { return netip.AddrFrom16(v4.As16()) },
		"NAT64": func(v4 netip.Addr) netip.Addr {
			b := netip.MustParseAddr("64:ff9b::").As16()
			copy(b[12:], v4.AsSlice())
			return netip.AddrFrom16(b)
		},
		"6to4": func(v4 netip.Addr) netip.Addr {
			b := netip.MustParseAddr("2002::").As16()
			copy(b[2:6], v4.AsSlice())
			b[15] = 1
			return netip.AddrFrom16(b)
		},
	}
	refused := 0
	for _, blk := range blocks {
		if blk.decision == "embedded" {
			continue
		}
		for _, a := range []netip.Addr{blk.prefix.Masked().Addr(), midAddr(blk.prefix), lastAddr(blk.prefix)} {
			if err := checkPublic(a); !errors.Is(err, errNonPublic) {
				t.Errorf("%s (%s, %s): %v, want refused", a, blk.prefix, blk.name, err)
			}
			refused++
			if a.Is4() {
				for form, f := range embed {
					if err := checkPublic(f(a)); !errors.Is(err, errNonPublic) || !strings.Contains(err.Error(), form) {
						t.Errorf("%s, the %s form of %s (%s): %v, want refused naming the form", f(a), form, a, blk.name, err)
					}
				}
			}
		}
	}
	for _, s := range public {
		a := netip.MustParseAddr(s)
		if err := checkPublic(a); err != nil {
			t.Errorf("public %s refused: %v", a, err)
		}
		if a.Is4() {
			for form, f := range embed {
				if err := checkPublic(f(a)); err != nil {
					t.Errorf("public %s in %s form %s refused: %v", a, form, f(a), err)
				}
			}
		}
	}
	// The forms that embed an address are in the table, so that a registry
	// revision that changes them is noticed.
	for _, p := range []netip.Prefix{nat64, sixToFour, netip.MustParsePrefix("::ffff:0:0/96")} {
		found := false
		for _, blk := range blocks {
			found = found || (blk.prefix == p && blk.decision == "embedded")
		}
		if !found {
			t.Errorf("%s is not in the table as embedded", p)
		}
	}
	t.Logf("%d blocks, %d addresses refused (each also in three IPv6 forms when IPv4)", len(blocks), refused)
}

// TestDialFilterRefusesAtConnect checks that the filter sits in the dialer,
// where a name has already been resolved: every address a name could
// resolve to is judged when the connection is made.
func TestDialFilterRefusesAtConnect(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:443", "[::1]:443", "[64:ff9b::a9fe:a9fe]:443", "100.100.100.200:80", "[2002:c0a8:101::1]:443"} {
		err := refuseNonPublic("tcp", addr, nil)
		if !errors.Is(err, errNonPublic) {
			t.Errorf("%s: %v, want refused", addr, err)
		}
	}
	if err := refuseNonPublic("tcp", "140.91.10.20:443", nil); err != nil {
		t.Errorf("public: %v", err)
	}
	c := newConfirmClient(0)
	_, err := c.Get("https://127.0.0.1:1/confirm")
	if !errors.Is(err, errNonPublic) {
		t.Fatalf("client to loopback: %v, want refused by the filter", err)
	}
}

// TestConfirmFailureRevealsNothingInternal: the reason a 502 gives never
// carries what the error it comes from knows about the network (resolver
// address, internal addresses, ports).
func TestConfirmFailureRevealsNothingInternal(t *testing.T) {
	dns := &net.DNSError{Err: "no such host", Name: "x.oraclecloud.com", Server: "10.0.0.53:53", IsNotFound: true}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("confirm: %w", &net.OpError{Op: "dial", Err: dns}), "could not be resolved"},
		{fmt.Errorf("dial tcp 10.1.2.3:443: confirmation fetch: %w 10.1.2.3", errNonPublic), "not public"},
		{fmt.Errorf("confirm: %w", statusError{404}), "HTTP 404"},
		{fmt.Errorf("Get: confirmation fetch: %w to http://10.0.0.1", errRedirect), "redirected"},
		{fmt.Errorf("confirm: %w", context.DeadlineExceeded), "ingest.confirm.timeout"},
		{errors.New("dial tcp 10.9.9.9:443: connect: connection refused"), "the connection failed"},
	} {
		got := confirmFailure(tc.err)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
		for _, leak := range []string{"10.", ":53", ":443", "dial"} {
			if strings.Contains(got, leak) {
				t.Errorf("%v: %q reveals %q", tc.err, got, leak)
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:s3cret@cell1.notification.oraclecloud.com/c?token=t": "https://REDACTED@cell1.notification.oraclecloud.com/c?token=t",
		"https://only-user@host.example/c":                                 "https://REDACTED@host.example/c",
		"https://host.example/c?token=t":                                   "https://host.example/c?token=t",
		"https://us er:s3cret@host.example/%zz":                            "https://REDACTED@host.example/%zz",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
