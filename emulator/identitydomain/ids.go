package identitydomain

import (
	crand "crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"sync"
	"time"
)

// timeFormat is how IDCS writes timestamps: RFC 3339, UTC, milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

var ocidEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ocidSuffix renders at least 32 bytes as the 52 base32 characters that follow
// "aaaaaaaa" in an OCID.
func ocidSuffix(b []byte) string { return ocidEncoding.EncodeToString(b[:32])[:52] }

// ids makes the random identifiers a domain hands out: resource ids (32 hex
// digits, like IDCS), OCIDs, versions, tokens and event ids.
type ids struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newIDs(seed *uint64) *ids {
	var s1, s2 uint64
	if seed != nil {
		s1, s2 = *seed, *seed^0x9e3779b97f4a7c15
	} else {
		var b [16]byte
		_, _ = crand.Read(b[:])
		s1, s2 = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	}
	return &ids{rng: rand.New(rand.NewPCG(s1, s2))}
}

func (g *ids) fill(b []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fillFrom(g.rng, b)
}

func fillFrom(r *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
}

// hex32 returns 32 random lower-case hex digits.
func (g *ids) hex32() string {
	var b [16]byte
	g.fill(b[:])
	return hex.EncodeToString(b[:])
}

// ocid returns a new OCID of the given resource type, e.g. "user".
func (g *ids) ocid(kind string) string {
	var b [32]byte
	g.fill(b[:])
	return "ocid1." + kind + ".oc1..aaaaaaaa" + ocidSuffix(b[:])
}

// uuid returns a random (version 4) UUID, the form of an Events eventID.
func (g *ids) uuid() string {
	var b [16]byte
	g.fill(b[:])
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// genIDs is the unlocked generator Generate uses for speed and determinism.
type genIDs struct{ r *rand.Rand }

func (g genIDs) hex32() string {
	var b [16]byte
	fillFrom(g.r, b[:])
	return hex.EncodeToString(b[:])
}

func (g genIDs) ocid(kind string) string {
	var b [32]byte
	fillFrom(g.r, b[:])
	return "ocid1." + kind + ".oc1..aaaaaaaa" + ocidSuffix(b[:])
}
