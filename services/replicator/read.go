package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"

	"github.com/iamflow/iamflow/internal/identitydomain"
	"github.com/iamflow/iamflow/services/replicator/planner"
)

// idChunk is how many users one filtered read asks for by id
// ("id eq a or id eq b ..."), keeping the filter well inside URL limits.
const idChunk = 50

// readUser reads one user; nil, nil when it does not exist.
func readUser(ctx context.Context, d Domain, id string) (*planner.UserState, error) {
	u, err := d.GetUser(ctx, id)
	if errors.Is(err, identitydomain.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := planner.FromSDKUser(u)
	return &s, nil
}

// readUsers reads the users with the given ids, idChunk at a time; users
// that do not exist are absent from the result. A server that answers a
// user it was not asked for is not trusted with the question.
func readUsers(ctx context.Context, d Domain, ids []string) (map[string]*planner.UserState, error) {
	out := make(map[string]*planner.UserState, len(ids))
	for chunk := range slices.Chunk(ids, idChunk) {
		terms := make([]string, len(chunk))
		for i, id := range chunk {
			terms[i] = identitydomain.Eq("id", id)
		}
		for u, err := range d.Users(ctx, identitydomain.ListOptions{Filter: strings.Join(terms, " or "), PageSize: idChunk}) {
			if err != nil {
				return nil, err
			}
			s := planner.FromSDKUser(u)
			if !slices.Contains(chunk, s.ID) {
				return nil, fmt.Errorf("%s answered user %q to a filter on other ids: the filter is not trusted", d.Domain(), s.ID)
			}
			out[s.ID] = &s
		}
	}
	return out, nil
}

// findUser finds the target user matching src under the link's rule.
func (d *direction) findUser(ctx context.Context, src planner.UserState) (*planner.UserState, error) {
	var (
		u     identitydomains.User
		found bool
		err   error
	)
	if d.link.Match.User == planner.MatchExternalID {
		u, found, err = d.tgt.FindUserByExternalID(ctx, src.ID)
	} else if u, found, err = d.tgt.FindUserByName(ctx, src.UserName); err == nil && !found {
		// A copy iamflow made carries the source id as its externalId: a
		// copy whose mapping was lost (its write failed) and whose source
		// was renamed since is found that way, not made twice.
		u, found, err = d.tgt.FindUserByExternalID(ctx, src.ID)
	}
	if err != nil || !found {
		return nil, err
	}
	s := planner.FromSDKUser(u)
	return &s, nil
}

// readGroup reads one group, with all its members when members is set (the
// client pages them when the group is too large for one answer, or when the
// domain does not page members); nil, nil when it does not exist.
func readGroup(ctx context.Context, d Domain, id string, members bool) (*planner.GroupState, error) {
	var g identitydomains.Group
	var err error
	if members {
		g, err = d.GetGroupWithMembers(ctx, id, groupAttributes...)
	} else {
		g, err = d.GetGroup(ctx, id, groupAttributes...)
	}
	if errors.Is(err, identitydomain.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := planner.FromSDKGroup(g)
	return &s, nil
}

// findGroup finds the target group matching src under the link's rule.
func (d *direction) findGroup(ctx context.Context, src planner.GroupState, members bool) (*planner.GroupState, error) {
	attrs := groupAttributes
	if members {
		attrs = withMembers
	}
	var (
		g     identitydomains.Group
		found bool
		err   error
	)
	if d.link.Match.Group == planner.MatchExternalID {
		g, found, err = d.tgt.FindGroupByExternalID(ctx, src.ID, attrs...)
	} else if g, found, err = d.tgt.FindGroupByName(ctx, src.DisplayName, attrs...); err == nil && !found {
		// A copy iamflow made, found by the source id it carries (see findUser).
		g, found, err = d.tgt.FindGroupByExternalID(ctx, src.ID, attrs...)
	}
	if err != nil || !found {
		return nil, err
	}
	if members && g.Id != nil {
		// A search does not promise members; read them by id.
		return readGroup(ctx, d.tgt, *g.Id, true)
	}
	s := planner.FromSDKGroup(g)
	return &s, nil
}

// userInput reads what PlanUser needs for one source user.
func (d *direction) userInput(ctx context.Context, sourceID string) (planner.UserInput, error) {
	src, err := readUser(ctx, d.src, sourceID)
	if err != nil {
		return planner.UserInput{}, fmt.Errorf("read user %s in %s: %w", sourceID, d.source, err)
	}
	in := planner.UserInput{Source: src, SourceComplete: true, Declares: d.declares(ctx)}
	if err := d.resolveUser(ctx, &in, sourceID); err != nil {
		return in, err
	}
	return in, nil
}

// lostMapping finds the copy of a source object that has no mapping: the
// target object carrying the source id as its externalId, which only a
// copy iamflow made (or adopted and stamped) does, its mapping lost when
// its write failed. It is taken as created by iamflow, and stored again
// when the plan made on it is applied (Plan.Recovered).
func (d *direction) lostMapping(ctx context.Context, k planner.Kind, sourceID string) (planner.Mapping, bool, error) {
	var (
		id    *string
		found bool
		err   error
	)
	if k == planner.KindUser {
		var u identitydomains.User
		u, found, err = d.tgt.FindUserByExternalID(ctx, sourceID)
		id = u.Id
	} else {
		var g identitydomains.Group
		g, found, err = d.tgt.FindGroupByExternalID(ctx, sourceID, groupAttributes...)
		id = g.Id
	}
	if err != nil {
		return planner.Mapping{}, false, fmt.Errorf("find the copy of %s %s in %s: %w", k, sourceID, d.target, err)
	}
	if !found || id == nil || *id == "" {
		return planner.Mapping{}, false, nil
	}
	// A copy another source object has adopted since (deleted and
	// re-created under the same name) is that one's now.
	if taken, err := d.ids.ownedByAnother(ctx, d.scope(k), sourceID, *id); err != nil || taken {
		return planner.Mapping{}, false, err
	}
	// The mapping is stored when the plan made on it is applied, under the
	// copy's lease (storeRecovered): stored here, it could overwrite the
	// mapping of a re-created user adopting the copy at this moment.
	return planner.Mapping{SourceID: sourceID, TargetID: *id, Origin: planner.OriginCreated, Recovered: true}, true, nil
}

// inScope reports whether the link replicates the group.
func inScope(r *planner.Rules, g planner.GroupState) bool {
	ok, _ := r.GroupInScope(g)
	return ok
}

// resolveUser fills the mapping and the target user of in, and, when the
// user is to be retired, the link's target groups that hold it.
func (d *direction) resolveUser(ctx context.Context, in *planner.UserInput, sourceID string) error {
	mp, found, err := d.ids.Get(ctx, d.scope(planner.KindUser), sourceID)
	if err != nil {
		return err
	}
	if in.Source != nil && !found {
		if ok, _ := d.rules.UserInScope(*in.Source); !ok {
			return nil // out of scope and never copied: nothing to read in the target
		}
	}
	if !found && in.Source == nil {
		// Deleted in the source, with no mapping: a copy whose mapping
		// was never stored is still found by the source id it carries.
		mp, found, err = d.lostMapping(ctx, planner.KindUser, sourceID)
		if err != nil {
			return err
		}
	}
	if found {
		in.Mapping = &mp
		if in.Mapped, err = readUser(ctx, d.tgt, mp.TargetID); err != nil {
			return fmt.Errorf("read user %s in %s: %w", mp.TargetID, d.target, err)
		}
	}
	if in.Mapped == nil && in.Source != nil {
		if in.Matched, err = d.findUser(ctx, *in.Source); err != nil {
			return fmt.Errorf("find user %q in %s: %w", in.Source.UserName, d.target, err)
		}
	}
	if t := d.rules.RetiredUser(*in); t != nil {
		if in.Groups, err = d.linkGroupsOf(ctx, t.ID); err != nil {
			return fmt.Errorf("read the groups of user %q in %s: %w", t.UserName, d.target, err)
		}
	}
	return nil
}

// linkGroupsOf lists the target groups the link replicates (mapped in
// either direction) that hold target user tid: from the user's groups
// attribute, or, when the domain does not return it, by filtering groups on
// their members.
func (d *direction) linkGroupsOf(ctx context.Context, tid string) ([]planner.MemberOf, error) {
	u, err := d.tgt.GetUser(ctx, tid, "id", "groups")
	if errors.Is(err, identitydomain.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type ref struct{ id, name string }
	var refs []ref
	for _, g := range u.Groups {
		if id := str(g.Value); id != "" {
			refs = append(refs, ref{id, str(g.Display)})
		}
	}
	if len(refs) == 0 {
		for g, err := range d.tgt.Groups(ctx, identitydomain.ListOptions{Filter: identitydomain.Eq("members.value", tid),
			Attributes: []string{"id", "displayName"}}) {
			if errors.Is(err, identitydomain.ErrInvalidRequest) {
				d.log.Warn("target answers neither a user's groups nor a filter on members; a retired user's memberships are left to the group reconciles",
					"link", d.link.Name, "target", d.target, "error", err)
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			refs = append(refs, ref{str(g.Id), str(g.DisplayName)})
		}
	}
	var out []planner.MemberOf
	for _, r := range refs {
		mp, found, err := d.ids.Get(ctx, d.scope(planner.KindGroup).Reverse(), r.id)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, planner.MemberOf{SourceID: mp.TargetID, TargetID: r.id, Name: r.name})
		}
	}
	return out, nil
}

// groupInput reads what PlanGroup needs for one source group src (nil:
// deleted in the source): the group in the target and, with members, each
// source member resolved in the target.
func (d *direction) groupInput(ctx context.Context, src *planner.GroupState, sourceID string, members bool) (planner.GroupInput, error) {
	in := planner.GroupInput{Source: src, SourceComplete: true, Declares: d.declares(ctx)}
	mp, found, err := d.ids.Get(ctx, d.scope(planner.KindGroup), sourceID)
	if err != nil {
		return in, err
	}
	if src != nil && !found {
		if ok, _ := d.rules.GroupInScope(*src); !ok {
			return in, nil // out of scope and never copied: nothing to read in the target
		}
	}
	if !found && src == nil {
		if mp, found, err = d.lostMapping(ctx, planner.KindGroup, sourceID); err != nil {
			return in, err
		}
	}
	if found {
		in.Mapping = &mp
		if in.Mapped, err = readGroup(ctx, d.tgt, mp.TargetID, members); err != nil {
			return in, fmt.Errorf("read group %s in %s: %w", mp.TargetID, d.target, err)
		}
	}
	if in.Mapped == nil && src != nil {
		if in.Matched, err = d.findGroup(ctx, *src, members); err != nil {
			return in, fmt.Errorf("find group %q in %s: %w", src.DisplayName, d.target, err)
		}
	}
	if ok := src != nil && inScope(d.rules, *src); members && ok {
		var current []string
		if t := d.rules.TargetGroup(in); t != nil {
			current = t.Members
		}
		mi, err := d.membersInput(ctx, src.Members, current)
		if err != nil {
			return in, err
		}
		in.Members = &mi
	}
	return in, nil
}

// memberResolver answers what a membership reconcile needs about users:
// from the domains and the id map (events), or from a full reconcile's index.
type memberResolver interface {
	// mapping is the recorded mapping of a source user.
	mapping(ctx context.Context, sourceID string) (planner.Mapping, bool, error)
	// known is the source user's state when it is already at hand.
	known(sourceID string) *planner.UserState
	// complete says known has every source user: a member it does not
	// know is no user of the source (deleted where the source does not
	// cascade deletes into its groups).
	complete() bool
	// match finds the target user an unmapped source user matches.
	match(ctx context.Context, src planner.UserState) (*planner.UserState, error)
	// managed says whether iamflow created or adopted a target user.
	managed(ctx context.Context, targetID string) (bool, error)
	// gone returns which of the target ids are not users of the target.
	gone(ctx context.Context, targetIDs []string) (map[string]bool, error)
}

// liveResolver reads the id map and the target domain.
type liveResolver struct{ d *direction }

func (r liveResolver) mapping(ctx context.Context, sid string) (planner.Mapping, bool, error) {
	return r.d.ids.Get(ctx, r.d.scope(planner.KindUser), sid)
}
func (liveResolver) known(string) *planner.UserState { return nil }
func (liveResolver) complete() bool                  { return false }
func (r liveResolver) match(ctx context.Context, src planner.UserState) (*planner.UserState, error) {
	return r.d.findUser(ctx, src)
}
func (r liveResolver) managed(ctx context.Context, tid string) (bool, error) {
	return r.d.ids.managedTarget(ctx, r.d.scope(planner.KindUser), tid)
}
func (r liveResolver) gone(ctx context.Context, tids []string) (map[string]bool, error) {
	return goneUsers(ctx, r.d.tgt, tids)
}

// goneUsers reads the given users and returns those that do not exist.
func goneUsers(ctx context.Context, d Domain, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	found, err := readUsers(ctx, d, ids)
	if err != nil {
		return nil, fmt.Errorf("read members in %s: %w", d.Domain(), err)
	}
	out := map[string]bool{}
	for _, id := range ids {
		if found[id] == nil {
			out[id] = true
		}
	}
	return out, nil
}

// indexResolver answers from a full reconcile's index.
type indexResolver struct {
	d  *direction
	ix *fullIndex
}

func (d *direction) fullResolver(ix *fullIndex) indexResolver { return indexResolver{d: d, ix: ix} }

func (r indexResolver) mapping(_ context.Context, sid string) (planner.Mapping, bool, error) {
	um, ok := r.ix.userMaps[sid]
	return um.mapping(sid), ok, nil
}
func (r indexResolver) known(sid string) *planner.UserState { return r.ix.srcUsers[sid] }
func (indexResolver) complete() bool                        { return true }
func (r indexResolver) match(_ context.Context, src planner.UserState) (*planner.UserState, error) {
	return r.ix.match(r.d.link.Match.User, src), nil
}
func (r indexResolver) managed(_ context.Context, tid string) (bool, error) {
	return r.ix.managed[tid], nil
}

// gone reads only the members the listing did not see (a user added since
// the listing is not gone).
func (r indexResolver) gone(ctx context.Context, tids []string) (map[string]bool, error) {
	var unseen []string
	for _, id := range tids {
		if r.ix.tgtUsers[id] == nil {
			unseen = append(unseen, id)
		}
	}
	return goneUsers(ctx, r.d.tgt, unseen)
}

// membersInput resolves a group's source members in the target, reading
// the id map and the domains.
func (d *direction) membersInput(ctx context.Context, srcMembers, tgtMembers []string) (planner.MembersInput, error) {
	return d.resolveMembers(ctx, srcMembers, tgtMembers, liveResolver{d})
}

// resolveMembers resolves the source members of a group in the target.
// Mapped members need no read of the target (the mapping names their copy);
// the source is read only for members the link must scope-check or that
// have no copy yet, unless the resolver knows them; unmapped members are
// matched in the target. ManagedTargetUsers is filled for the target
// members that may be removed.
func (d *direction) resolveMembers(ctx context.Context, srcMembers, tgtMembers []string, res memberResolver) (planner.MembersInput, error) {
	mi := planner.MembersInput{ManagedTargetUsers: map[string]bool{}}
	mappings, toRead, err := d.memberMappings(ctx, srcMembers, tgtMembers, res)
	if err != nil {
		return mi, err
	}
	read, err := readUsers(ctx, d.src, toRead)
	if err != nil {
		return mi, fmt.Errorf("read members in %s: %w", d.source, err)
	}
	asked := make(map[string]bool, len(toRead))
	for _, sid := range toRead {
		asked[sid] = true
	}
	wanted := map[string]bool{}
	if mi.Users, err = d.memberInputs(ctx, srcMembers, mappings, read, asked, wanted, res); err != nil {
		return mi, err
	}
	unmanaged, err := targetMembersManaged(ctx, tgtMembers, wanted, res, mi.ManagedTargetUsers)
	if err != nil {
		return mi, err
	}
	// A member that is no user of the target (deleted where the domain
	// does not cascade) is a difference, managed or not.
	if mi.Dangling, err = res.gone(ctx, unmanaged); err != nil {
		return mi, err
	}
	return mi, nil
}

// memberMappings looks up the source members' mappings and says which
// members must be read from the source.
func (d *direction) memberMappings(ctx context.Context, srcMembers, tgtMembers []string, res memberResolver) (map[string]planner.Mapping, []string, error) {
	mappings := make(map[string]planner.Mapping, len(srcMembers))
	inTarget := make(map[string]bool, len(tgtMembers))
	for _, tid := range tgtMembers {
		inTarget[tid] = true
	}
	var toRead []string
	for _, sid := range srcMembers {
		mp, found, err := res.mapping(ctx, sid)
		if err != nil {
			return nil, nil, err
		}
		if found {
			mappings[sid] = mp
		}
		// Read the members the link must scope-check, those with no copy
		// yet, and those about to be added (so a member a source that does
		// not cascade deletes still lists is not added, and the audit
		// trail names who is); a mapped member already in the target group
		// needs no read.
		if res.known(sid) == nil && (!found || d.rules.UsersScoped() || !inTarget[mp.TargetID]) {
			toRead = append(toRead, sid)
		}
	}
	return mappings, toRead, nil
}

// memberInputs is the planner's input for each source member that is a
// user of the source, noting in wanted the target users they map to.
func (d *direction) memberInputs(ctx context.Context, srcMembers []string, mappings map[string]planner.Mapping, read map[string]*planner.UserState,
	asked, wanted map[string]bool, res memberResolver) ([]planner.UserInput, error) {
	users := make([]planner.UserInput, 0, len(srcMembers))
	// The mapped members' mappings and stand-in target states, in one
	// allocation each rather than two per member.
	maps := make([]planner.Mapping, 0, len(mappings))
	copies := make([]planner.UserState, 0, len(mappings))
	for _, sid := range srcMembers {
		src := res.known(sid)
		if src == nil {
			src = read[sid]
		}
		mp, mapped := mappings[sid]
		if src == nil && (!mapped || res.complete() || asked[sid]) {
			continue // no user of the source (any more): not a member to copy
		}
		if src == nil {
			src = &planner.UserState{ID: sid, Active: true} // mapped, in the target group, not scoped: the mapping is all we need
		}
		u := planner.UserInput{Source: src, SourceComplete: true}
		if mapped {
			// (A pointer into a slice that grows later stays valid.)
			maps = append(maps, mp)
			copies = append(copies, planner.UserState{ID: mp.TargetID, Active: true})
			u.Mapping, u.Mapped = &maps[len(maps)-1], &copies[len(copies)-1]
			wanted[mp.TargetID] = true
		} else {
			var err error
			if u.Matched, err = res.match(ctx, *src); err != nil {
				return users, fmt.Errorf("find user %q in %s: %w", src.UserName, d.target, err)
			}
		}
		users = append(users, u)
	}
	return users, nil
}

// targetMembersManaged records, for each target member no source member
// maps to, whether iamflow manages it, and returns those it does not.
func targetMembersManaged(ctx context.Context, tgtMembers []string, wanted map[string]bool, res memberResolver, managedOf map[string]bool) ([]string, error) {
	var unmanaged []string
	for _, tid := range tgtMembers {
		if wanted[tid] {
			continue
		}
		managed, err := res.managed(ctx, tid)
		if err != nil {
			return unmanaged, err
		}
		managedOf[tid] = managed
		if !managed {
			unmanaged = append(unmanaged, tid)
		}
	}
	return unmanaged, nil
}

// str is the value of an optional SDK string, "" when absent.
func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
