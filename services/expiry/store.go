package expiry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// grantsBucket is the JetStream KV bucket holding the grants: "g.<id>" is a grant,
// "m.<domain>.<group id>.<user id>" names the open (pending or active) grant
// of a membership, so two grants for one membership cannot both be opened.
const grantsBucket = "IAM_EXPIRY_GRANTS"

// record is what the bucket stores for a grant: the grant and, while a
// revocation is under way, who claimed it and until when.
type record struct {
	g          *iamflowv1.Grant
	claim      string
	claimUntil time.Time
}

type recordJSON struct {
	Grant      json.RawMessage `json:"grant"`
	Claim      string          `json:"claim,omitempty"`
	ClaimUntil time.Time       `json:"claim_until,omitzero"`
}

func (r *record) marshal() ([]byte, error) {
	g, err := protojson.Marshal(r.g)
	if err != nil {
		return nil, err
	}
	return json.Marshal(recordJSON{Grant: g, Claim: r.claim, ClaimUntil: r.claimUntil})
}

func unmarshalRecord(b []byte) (*record, error) {
	var rj recordJSON
	if err := json.Unmarshal(b, &rj); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	g := &iamflowv1.Grant{}
	if err := protojson.Unmarshal(rj.Grant, g); err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	return &record{g: g, claim: rj.Claim, claimUntil: rj.ClaimUntil}, nil
}

// store is the grants bucket (grants.KV): the grants themselves through
// grants, the membership index and the scans on the bucket directly.
type store struct {
	grants servicekit.Records[*record]
}

func newStore(kv jetstream.KeyValue) *store {
	return &store{grants: servicekit.Records[*record]{
		KV: kv, Kind: "grant", Key: grantKey,
		Encode: (*record).marshal, Decode: unmarshalRecord,
	}}
}

// errConflict is a compare-and-set that lost: someone else changed the grant.
var errConflict = servicekit.ErrConflict

func grantKey(id string) string { return "g." + id }

func memberKey(domain, groupID, userID string) string {
	return "m." + domain + "." + groupID + "." + userID
}

// get returns the grant with that id and its revision; errNotFound when
// there is none.
func (s *store) get(ctx context.Context, id string) (*record, uint64, error) {
	r, rev, err := s.grants.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, errNotFound
	}
	return r, rev, err
}

func (s *store) create(ctx context.Context, r *record) (uint64, error) {
	return s.grants.Create(ctx, r.g.GetId(), r)
}

// update stores r if the grant is still at rev; errConflict if not.
func (s *store) update(ctx context.Context, r *record, rev uint64) (uint64, error) {
	return s.grants.Update(ctx, r.g.GetId(), r, rev)
}

// claimMembership makes id the open grant of its membership. It returns the
// id of another open grant of the membership if there is one (and then
// claims nothing). An index naming an ended grant is stale and is taken over
// by compare-and-set; so is one naming a missing grant, but only once it is
// older than claimTTL: a grant is recorded just after its index is claimed
// (after a check of the domain), and a concurrent claim must not take the
// index from a grant that is being created.
func (s *store) claimMembership(ctx context.Context, domain, groupID, userID, id string) (string, error) {
	key := memberKey(domain, groupID, userID)
	for range 5 {
		_, err := s.grants.KV.Create(ctx, key, []byte(id))
		if err == nil {
			return "", nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", fmt.Errorf("index membership: %w", err)
		}
		e, err := s.grants.KV.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read membership index: %w", err)
		}
		other := string(e.Value())
		r, _, err := s.get(ctx, other)
		if err != nil && !errors.Is(err, errNotFound) {
			return "", err
		}
		if err == nil && open(r.g) {
			return other, nil
		}
		if err != nil && time.Since(e.Created()) < claimTTL {
			return other, nil // being created right now
		}
		// A stale index: the grant it names has ended.
		if _, err := s.grants.KV.Update(ctx, key, []byte(id), e.Revision()); err == nil {
			return "", nil
		}
	}
	return "", fmt.Errorf("index membership %s: %w", key, errConflict)
}

// releaseMembership removes the membership index if it still names id.
func (s *store) releaseMembership(ctx context.Context, g *iamflowv1.Grant) {
	key := memberKey(g.Domain, g.GroupId, g.UserId)
	e, err := s.grants.KV.Get(ctx, key)
	if err != nil || string(e.Value()) != g.Id {
		return
	}
	_ = s.grants.KV.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
}

// openGrant returns the open grant of a membership, or nil.
func (s *store) openGrant(ctx context.Context, domain, groupID, userID string) (*iamflowv1.Grant, error) {
	e, err := s.grants.KV.Get(ctx, memberKey(domain, groupID, userID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read membership index: %w", err)
	}
	r, _, err := s.get(ctx, string(e.Value()))
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !open(r.g) {
		return nil, nil
	}
	return r.g, nil
}

// all calls fn with every grant and its revision.
func (s *store) all(ctx context.Context, fn func(*record, uint64)) error {
	err := bus.EachValue(ctx, s.grants.KV, "g.>", func(e jetstream.KeyValueEntry) error {
		if r, err := unmarshalRecord(e.Value()); err == nil {
			fn(r, e.Revision())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list grants: %w", err)
	}
	return nil
}
