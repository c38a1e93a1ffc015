package identitydomain

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"strings"
)

// Paging invariants. SCIM paging is by index (RFC 7644 §3.4.2.4) and a
// server is trusted to page only as far as it shows it does. Each page of a
// listing is checked:
//
//   - the answer's startIndex is the one asked for (when the answer has one);
//   - a page holds no more resources than the count asked for;
//   - every resource has an id, and no id is seen twice in one read;
//   - totalResults does not change between pages;
//   - the read ends on totalResults exactly, or, when the server gives no
//     totalResults, on an empty page (a short page is not trusted to be the
//     last).
//
// A read that breaks one is incomplete. It is then read again another way:
// POST /.search with the paging in the body (servers that drop startIndex and
// count from the query), then GET sorted by id (servers whose default order
// is not stable between requests; skipped when the caller chose an order).
// The strategy that reads the list whole is remembered for the next listing
// of the same endpoint. When none does, the listing ends with a
// KindInconsistentRead error naming each fault. Every fault is counted in
// iamflow_identitydomain_paging_faults_total{domain,fault} and logged once
// per client.

// ReadFault names how a server broke an invariant of a read (paging, or a
// lookup's filter); it is the fault label of
// iamflow_identitydomain_paging_faults_total and Error.Fault.
type ReadFault string

// The read faults.
const (
	// FaultStartIndexIgnored: the answer's startIndex is not the one asked for.
	FaultStartIndexIgnored ReadFault = "start_index_ignored"
	// FaultPageTooLarge: a page held more resources than the count asked for.
	FaultPageTooLarge ReadFault = "page_too_large"
	// FaultRepeatedID: an id came back twice in one read.
	FaultRepeatedID ReadFault = "repeated_id"
	// FaultMissingID: a resource came back without an id.
	FaultMissingID ReadFault = "missing_id"
	// FaultTotalMismatch: the read ended with more or fewer resources than
	// totalResults.
	FaultTotalMismatch ReadFault = "total_mismatch"
	// FaultTotalChanged: totalResults changed between pages (the directory
	// changed while it was read, or the server counts inconsistently).
	FaultTotalChanged ReadFault = "total_changed"
	// FaultTotalMissing: the answer had no totalResults; not fatal, the read
	// then goes on until an empty page.
	FaultTotalMissing ReadFault = "total_missing"
	// FaultMemberPagingIgnored: a group answered member paging
	// (members[startIndex=..&count=..]) with more members than asked, the same
	// members again, or none while it has some; members are then read whole.
	FaultMemberPagingIgnored ReadFault = "member_paging_ignored"
	// FaultMemberPagingRejected: a group refused member paging with 400;
	// members are then read whole.
	FaultMemberPagingRejected ReadFault = "member_paging_rejected"
	// FaultFilterIgnored: a lookup by userName, displayName or externalId
	// answered a resource that does not match (the server ignored the
	// filter); the lookup fails rather than return the wrong resource.
	FaultFilterIgnored ReadFault = "filter_ignored"
)

// strategy is one way of reading a list.
type strategy int

const (
	// strategyQuery: GET with startIndex and count in the query.
	strategyQuery strategy = iota
	// strategySearch: POST /.search with startIndex and count in the body.
	strategySearch
	// strategySorted: GET with sortBy=id.
	strategySorted
)

func (s strategy) describe(endpoint string) string {
	switch s {
	case strategySearch:
		return "POST /" + endpoint + "/.search"
	case strategySorted:
		return "GET /" + endpoint + "?sortBy=id"
	}
	return "GET /" + endpoint
}

// listPage is one answer of a list request.
type listPage[T any] struct {
	items      []T
	total      *int
	startIndex *int
}

// lister reads one list.
type lister[T any] struct {
	c        *Client
	what     string // "list users in src", the prefix of errors
	endpoint string // "Users"
	size     int
	ordered  bool // the caller chose an order: no sortBy=id fallback
	id       func(T) string
	fetch    func(s strategy, start, count int) (listPage[T], error)
}

// pagingError is one read's broken invariant.
type pagingError struct {
	fault  ReadFault
	detail string
}

// strategies returns the ways to read the list, the one remembered for the
// endpoint first.
func (l *lister[T]) strategies() []strategy {
	all := []strategy{strategyQuery, strategySearch}
	if !l.ordered {
		all = append(all, strategySorted)
	}
	if v, ok := l.c.listModes.Load(l.endpoint); ok {
		first := v.(strategy)
		out := []strategy{first}
		for _, s := range all {
			if s != first {
				out = append(out, s)
			}
		}
		return out
	}
	return all
}

// all reads the whole list, trying the strategies in turn until one reads
// it without breaking an invariant.
func (l *lister[T]) all(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		// The ids earlier reads yielded: a read keeps the ids it saw (and
		// so yielded), which become these when another read follows; one
		// map of a listing's ids, not two.
		var yielded map[string]struct{}
		var faults []string
		var first ReadFault
		for i, s := range l.strategies() {
			pe, seen, stopped, err := l.read(s, yielded, yield)
			if yielded == nil {
				yielded = seen
			} else {
				maps.Copy(yielded, seen)
			}
			switch {
			case stopped:
				return
			case err != nil && i > 0 && unsupported(err):
				faults = append(faults, fmt.Sprintf("%s: not supported (%v)", s.describe(l.endpoint), err))
				continue
			case err != nil:
				yield(zero, err)
				return
			case pe == nil:
				if i > 0 {
					l.c.listModes.Store(l.endpoint, s)
					l.c.logOnce(ctx, "paging-fallback:"+l.endpoint+":"+s.describe(l.endpoint),
						"identity domain listing read whole by a fallback; using it from now on",
						"endpoint", l.endpoint, "strategy", s.describe(l.endpoint), "faults", strings.Join(faults, "; "))
				}
				return
			}
			if first == "" {
				first = pe.fault
			}
			msg := fmt.Sprintf("%s %s", s.describe(l.endpoint), pe.detail)
			faults = append(faults, msg)
			l.c.pagingFault(ctx, pe.fault, msg)
			if err := ctx.Err(); err != nil {
				yield(zero, fmt.Errorf("%s: %w", l.what, err))
				return
			}
		}
		yield(zero, fmt.Errorf("%s: %w", l.what, &Error{Kind: KindInconsistentRead, Op: "List" + l.endpoint, Domain: l.c.domain, Fault: first,
			Detail: "the server pages inconsistently, so the list read is incomplete: " + strings.Join(faults, "; ")}))
	}
}

// read reads the list once with strategy s, yielding the resources not
// yielded before (by an earlier read). It returns the first broken
// invariant, the ids it saw (every one yielded, now or before), whether the
// caller stopped, or the error of a request.
func (l *lister[T]) read(s strategy, yielded map[string]struct{}, yield func(T, error) bool) (pe *pagingError, seen map[string]struct{}, stopped bool, err error) {
	r := &readState{seen: map[string]struct{}{}, start: 1}
	seen = r.seen
	defer func() {
		if r.totalMissing && pe == nil && err == nil && !stopped {
			l.c.pagingFault(context.Background(), FaultTotalMissing, s.describe(l.endpoint)+" answered without totalResults; read on to an empty page")
		}
	}()
	for {
		r.page++
		p, err := l.fetch(s, r.start, l.size)
		if err != nil {
			return nil, seen, false, fmt.Errorf("%s (from %d): %w", l.what, r.start, err)
		}
		k := len(p.items)
		if pe := r.checkPage(k, l.size, p.startIndex, p.total); pe != nil {
			return pe, seen, false, nil
		}
		for i := range p.items {
			id := l.id(p.items[i])
			if pe := r.see(id); pe != nil {
				return pe, seen, false, nil
			}
			if _, done := yielded[id]; done {
				continue
			}
			if !yield(p.items[i], nil) {
				return nil, seen, true, nil
			}
		}
		if done, pe := r.end(k); done || pe != nil {
			return pe, seen, false, nil
		}
		r.start += k
	}
}

// readState is what one read of a list has seen so far: the ids, the
// totalResults of the first page, the page being read and where it starts.
type readState struct {
	seen         map[string]struct{}
	total        *int
	start, page  int
	totalMissing bool
}

// checkPage returns the invariant a page of k resources broke, given the
// startIndex and totalResults it answered, or nil.
func (r *readState) checkPage(k, size int, startIndex, total *int) *pagingError {
	switch {
	case k > 0 && startIndex != nil && *startIndex != r.start:
		return &pagingError{FaultStartIndexIgnored, fmt.Sprintf("ignored startIndex=%d (answered startIndex=%d) on page %d", r.start, *startIndex, r.page)}
	case k > size:
		return &pagingError{FaultPageTooLarge, fmt.Sprintf("answered %d resources for count=%d on page %d (startIndex=%d)", k, size, r.page, r.start)}
	}
	switch {
	case total == nil:
		if r.total == nil {
			r.totalMissing = true
		}
	case r.total == nil && r.page == 1:
		r.total = total
	case r.total == nil:
		return &pagingError{FaultTotalChanged, fmt.Sprintf("gave no totalResults on page 1, then totalResults=%d on page %d", *total, r.page)}
	case *total != *r.total:
		return &pagingError{FaultTotalChanged, fmt.Sprintf("changed totalResults from %d to %d on page %d (the directory changed while it was read, or the server counts inconsistently)", *r.total, *total, r.page)}
	}
	return nil
}

// see records the id of a resource on the current page; a missing or
// repeated id breaks the read.
func (r *readState) see(id string) *pagingError {
	if id == "" {
		return &pagingError{FaultMissingID, fmt.Sprintf("answered a resource without an id on page %d (startIndex=%d)", r.page, r.start)}
	}
	if _, dup := r.seen[id]; dup {
		return &pagingError{FaultRepeatedID, fmt.Sprintf("repeated id %s on page %d (startIndex=%d)", id, r.page, r.start)}
	}
	r.seen[id] = struct{}{}
	return nil
}

// end says, after a page of k resources, whether the read is complete, or
// the invariant the count of resources broke.
func (r *readState) end(k int) (bool, *pagingError) {
	if k == 0 {
		if r.total != nil && len(r.seen) < *r.total {
			return false, &pagingError{FaultTotalMismatch, fmt.Sprintf("ended after %d of totalResults=%d resources (page %d at startIndex=%d was empty)", len(r.seen), *r.total, r.page, r.start)}
		}
		return true, nil
	}
	if r.total != nil {
		if len(r.seen) > *r.total {
			return false, &pagingError{FaultTotalMismatch, fmt.Sprintf("answered %d resources, more than totalResults=%d, by page %d", len(r.seen), *r.total, r.page)}
		}
		if len(r.seen) == *r.total {
			return true, nil
		}
	}
	return false, nil
}

// pagingFault counts a paging fault and logs it once per client.
func (c *Client) pagingFault(ctx context.Context, f ReadFault, detail string) {
	c.metrics.pagingFaults.WithLabelValues(c.domain, string(f)).Inc()
	c.logOnce(ctx, "paging-fault:"+string(f), "identity domain paging fault", "fault", string(f), "detail", detail)
}

// logOnce logs a warning the first time key is seen by this client.
func (c *Client) logOnce(ctx context.Context, key, msg string, args ...any) {
	if _, loaded := c.logged.LoadOrStore(key, struct{}{}); loaded {
		return
	}
	c.log.WarnContext(ctx, msg, append([]any{"domain", c.domain}, args...)...)
}
