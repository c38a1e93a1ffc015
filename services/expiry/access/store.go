package access

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// Bucket is the JetStream KV bucket of access requests.
const Bucket = "iamflow_access_requests"

// record is a request as stored, with what was announced of it.
type record struct {
	r *iamflowv1.AccessRequest
	// Notified are the steps already announced (so a step is announced
	// once, whichever replica sees it).
	Notified []string
}

type recordJSON struct {
	Request  json.RawMessage `json:"request"`
	Notified []string        `json:"notified,omitempty"`
}

func (r *record) marshal() ([]byte, error) {
	b, err := protojson.Marshal(r.r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(recordJSON{Request: b, Notified: r.Notified})
}

func unmarshalRecord(b []byte) (*record, error) {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	r := &record{r: &iamflowv1.AccessRequest{}, Notified: j.Notified}
	if err := protojson.Unmarshal(j.Request, r.r); err != nil {
		return nil, err
	}
	return r, nil
}

// undecided reports whether a request still waits for its decision or its
// grant: the state in which it holds the user's claim on the group.
func undecided(s iamflowv1.RequestState) bool {
	return s == iamflowv1.RequestState_REQUEST_STATE_PENDING || s == iamflowv1.RequestState_REQUEST_STATE_APPROVED
}

// store keeps requests in KV: r.<id> the request, o.<domain>.<group>.<user>
// the open request of a user for a group (one at a time).
type store struct {
	requests servicekit.Records[*record] // requests.KV is the bucket
}

func openStore(ctx context.Context, b *bus.Bus) (*store, error) {
	kv, err := servicekit.OpenBucket(ctx, b, "access", jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "iamflow access requests and their decisions",
	})
	if err != nil {
		return nil, err
	}
	return &store{requests: servicekit.Records[*record]{
		KV: kv, Kind: "access request", Key: requestKey,
		Encode: (*record).marshal, Decode: unmarshalRecord,
	}}, nil
}

func requestKey(id string) string { return "r." + id }

func openKey(domain, group, user string) string {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(s))) }
	return "o." + enc(domain) + "." + enc(group) + "." + enc(user)
}

// get returns a request and its revision; nil when there is none.
func (s *store) get(ctx context.Context, id string) (*record, uint64, error) {
	r, rev, err := s.requests.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	return r, rev, err
}

// claim records id as the open request of the user for the group; it
// returns the other open request's id when there is one.
func (s *store) claim(ctx context.Context, r *iamflowv1.AccessRequest) (string, error) {
	key := openKey(r.Domain, r.Group, r.UserName)
	if _, err := s.requests.KV.Create(ctx, key, []byte(r.Id)); err == nil {
		return "", nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", fmt.Errorf("access: claim %s: %w", key, err)
	}
	e, err := s.requests.KV.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("access: read claim %s: %w", key, err)
	}
	other := string(e.Value())
	// A claim whose request was decided (a crash between the decision and
	// the release) is stale: take it over.
	if o, _, err := s.get(ctx, other); err == nil && (o == nil || !undecided(o.r.State)) {
		if _, err := s.requests.KV.Update(ctx, key, []byte(r.Id), e.Revision()); err == nil {
			return "", nil
		}
	}
	return other, nil
}

// release frees the user's claim on the group if r holds it.
func (s *store) release(ctx context.Context, r *iamflowv1.AccessRequest) {
	key := openKey(r.Domain, r.Group, r.UserName)
	if e, err := s.requests.KV.Get(ctx, key); err == nil && string(e.Value()) == r.Id {
		_ = s.requests.KV.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
	}
}

// create stores a new request.
func (s *store) create(ctx context.Context, r *record) (uint64, error) {
	return s.requests.Create(ctx, r.r.GetId(), r)
}

// errConflict says the request changed since it was read.
var errConflict = servicekit.ErrConflict

// update stores r if the request is still at revision rev.
func (s *store) update(ctx context.Context, r *record, rev uint64) (uint64, error) {
	return s.requests.Update(ctx, r.r.GetId(), r, rev)
}

// all returns every request, newest first.
func (s *store) all(ctx context.Context) ([]*record, error) {
	lister, err := s.requests.KV.ListKeysFiltered(ctx, "r.*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("access: list requests: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	var out []*record
	for k := range lister.Keys() {
		r, _, err := s.get(ctx, strings.TrimPrefix(k, "r."))
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *record) int {
		return b.r.CreatedAt.AsTime().Compare(a.r.CreatedAt.AsTime())
	})
	return out, nil
}
