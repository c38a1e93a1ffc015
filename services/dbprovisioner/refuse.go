package dbprovisioner

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

// refusals are the users in a mapped group who cannot have an account, by
// user id (or lower-case userName when the id is unknown). The status
// lists them until the user is renamed, leaves the mapping or is deleted.
type refusals struct {
	mu sync.Mutex
	m  map[string]*iamflowv1.RefusedUser
}

func refusalKey(u User) string {
	if u.ID != "" {
		return u.ID
	}
	return strings.ToLower(u.UserName)
}

// add records a refusal and reports whether it is new (or its reason changed).
func (r *refusals) add(u User, reason string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := refusalKey(u)
	if old := r.m[k]; old != nil && old.Reason == reason && old.UserName == u.UserName {
		return false
	}
	if r.m == nil {
		r.m = map[string]*iamflowv1.RefusedUser{}
	}
	r.m[k] = &iamflowv1.RefusedUser{UserId: u.ID, UserName: u.UserName, Reason: reason, Since: timestamppb.New(now)}
	return true
}

// clear forgets the user's refusal, if any.
func (r *refusals) clear(u User) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, refusalKey(u))
}

// list returns the refusals, by userName.
func (r *refusals) list() []*iamflowv1.RefusedUser {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.SortedFunc(maps.Values(r.m), func(a, b *iamflowv1.RefusedUser) int { return strings.Compare(a.UserName, b.UserName) })
}
