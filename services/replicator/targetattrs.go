package replicator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// reasonNotDeclared is why an attribute the target's schemas lack is not sent.
const reasonNotDeclared = "not declared in the target's /Schemas"

// refusalTTL is how long an attribute the target refused is not sent
// again: long enough not to send it with every event, short enough that a
// target that starts taking it (a schema extended) gets it within the hour.
const refusalTTL = time.Hour

// targetAttrs is what a direction knows of the attributes its target takes:
// what the target's /Schemas declare (the client's Capabilities, refreshed
// on its schedule) less what the target refused when it was sent. Both are
// reported in the direction's status.
type targetAttrs struct {
	mu    sync.Mutex
	noted map[string]*iamflowv1.UnsupportedAttribute // resource/path (lower case)
	until map[string]time.Time                       // refusals: not sent again before
}

func attrKey(resource, path string) string { return strings.ToLower(resource + "/" + path) }

// declares returns the Declares of the direction's target as of now. The
// target's capabilities are asked for (discovery, cached by the client) only
// when a plan first needs them: a reconcile with nothing to send costs the
// target nothing.
func (d *direction) declares(ctx context.Context) planner.Declares {
	var once sync.Once
	var caps identitydomain.Capabilities
	now := d.now()
	return func(resource, path string) bool {
		once.Do(func() {
			var err error
			if caps, err = d.tgt.Capabilities(ctx); err != nil {
				// Not reachable: assume everything; a refusal still isolates itself.
				caps = identitydomain.Capabilities{}
			}
		})
		if !caps.Declares(resource, path) {
			d.attrs.note(resource, path, reasonNotDeclared, now)
			return false
		}
		return !d.attrs.refused(resource, path, now)
	}
}

func (a *targetAttrs) note(resource, path, reason string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := attrKey(resource, path)
	if a.noted == nil {
		a.noted = map[string]*iamflowv1.UnsupportedAttribute{}
	}
	if old := a.noted[k]; old != nil && old.Reason == reason {
		return
	}
	a.noted[k] = &iamflowv1.UnsupportedAttribute{Resource: resource, Path: path, Reason: reason, Since: timestamppb.New(now)}
}

// refuse remembers that the target refused path; it is not sent again for
// refusalTTL. It reports whether the refusal is new.
func (a *targetAttrs) refuse(resource, path, reason string, now time.Time) bool {
	a.mu.Lock()
	k := attrKey(resource, path)
	if a.until == nil {
		a.until = map[string]time.Time{}
	}
	_, known := a.until[k]
	a.until[k] = now.Add(refusalTTL)
	a.mu.Unlock()
	a.note(resource, path, reason, now)
	return !known
}

func (a *targetAttrs) refused(resource, path string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.until[attrKey(resource, path)]
	if ok && now.After(t) {
		delete(a.until, attrKey(resource, path))
		delete(a.noted, attrKey(resource, path))
		return false
	}
	return ok
}

// list returns what the target does not take, by resource and path.
func (a *targetAttrs) list() []*iamflowv1.UnsupportedAttribute {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.SortedFunc(maps.Values(a.noted), func(x, y *iamflowv1.UnsupportedAttribute) int {
		return strings.Compare(x.Resource+"/"+x.Path, y.Resource+"/"+y.Path)
	})
}

// refusal reports whether err is a target refusing what was sent (400: an
// invalid path, value or syntax), as opposed to a failure worth retrying.
func refusal(err error) bool {
	return errors.Is(err, identitydomain.ErrInvalidRequest) && !identitydomain.Retryable(err)
}

// shortError says what a target answered, without the call's context.
func shortError(err error) string {
	var e *identitydomain.Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	out := e.Detail
	if e.SCIMType != "" {
		out = e.SCIMType + ": " + out
	}
	if e.Status != 0 {
		out = fmt.Sprintf("HTTP %d %s", e.Status, out)
	}
	return out
}

// opPath is the path a PATCH operation sets.
func opPath(op identitydomains.Operations) string {
	if op.Path == nil {
		return ""
	}
	return *op.Path
}
