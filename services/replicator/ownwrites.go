package replicator

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WritesBucket is the JetStream KV bucket where the replicator remembers
// what it wrote.
const WritesBucket = "iamflow_replicator_writes"

// writesMaxAge is how long a write is remembered: the echo of a write comes
// back as an event within OCI's delivery window (Notifications retries for
// two hours), with room to spare.
const writesMaxAge = 24 * time.Hour

// ownWrites remembers, per link, domain and object, the fingerprint of the
// state the replicator left the object in. An event about an object whose
// current state is exactly what the replicator wrote there is the echo of
// that write: the reverse direction of a bidirectional link has nothing to
// copy back. Any other change, whoever made it (a person, another part of
// iamflow, anyone using iamflow's OAuth client), is a real change.
type ownWrites struct{ kv jetstream.KeyValue }

func openOwnWrites(ctx context.Context, js jetstream.JetStream, pl Placement) (*ownWrites, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: WritesBucket, Description: "iamflow replicator: fingerprints of the states it wrote, for echo suppression",
		History: 1, TTL: writesMaxAge, Storage: pl.Storage, Replicas: pl.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("replicator: create bucket %s: %w", WritesBucket, err)
	}
	return &ownWrites{kv: kv}, nil
}

func writeKey(link, domain string, k Kind, id string) string {
	return link + "." + domain + "." + string(k) + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// record remembers that the object now holds the state with fingerprint fp.
func (w *ownWrites) record(ctx context.Context, link, domain string, k Kind, id, fp string) error {
	if id == "" || fp == "" {
		return nil
	}
	if _, err := w.kv.Put(ctx, writeKey(link, domain, k, id), []byte(fp)); err != nil {
		return fmt.Errorf("replicator: remember write of %s %s in %s: %w", k, id, domain, err)
	}
	return nil
}

// is reports whether the object's state, fingerprint fp, is the one the
// replicator wrote last.
func (w *ownWrites) is(ctx context.Context, link, domain string, k Kind, id, fp string) (bool, error) {
	e, err := w.kv.Get(ctx, writeKey(link, domain, k, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("replicator: read own write of %s %s in %s: %w", k, id, domain, err)
	}
	return string(e.Value()) == fp, nil
}

// userFingerprint digests what the link compares of a user: its userName
// (case-insensitively) and every attribute the link copies, on either side
// of a mapping. Attributes the link ignores are left out, so a domain's
// own defaults for them do not make a write look like someone else's.
func (r *Rules) userFingerprint(u UserState) string {
	var b strings.Builder
	b.WriteString("u\x00" + strings.ToLower(u.UserName))
	for _, a := range r.fingerprintAttrs {
		b.WriteString("\x00" + a + "=")
		switch a {
		case AttrEmails:
			b.WriteString(emailsString(sortEmails(slices.Clone(u.Emails))))
		case AttrActive:
			b.WriteString(strconv.FormatBool(u.Active))
		default:
			b.WriteString(u.userString(a))
		}
	}
	return digest(b.String())
}

// groupFingerprint digests what the link compares of a group: displayName,
// the copied attributes and the members (ids in the group's own domain).
func (r *Rules) groupFingerprint(g GroupState) string {
	var b strings.Builder
	b.WriteString("g\x00" + g.DisplayName)
	if r.groupAttrs[AttrDescription] {
		b.WriteString("\x00description=" + g.Description)
	}
	members := slices.Compact(slices.Sorted(slices.Values(g.Members)))
	b.WriteString("\x00members=" + strings.Join(members, ","))
	return digest(b.String())
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// fingerprintAttrsOf lists the user attributes a link's fingerprints cover:
// the source and target attribute of every copy rule, once each, sorted.
func fingerprintAttrsOf(copies []copyRule) []string {
	var out []string
	for _, c := range copies {
		out = append(out, c.from, c.to)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(a string) bool { return a == AttrUserName })
}
