package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
)

// UserFingerprint digests what the link compares of a user: its userName
// (case-insensitively) and every attribute the link copies, on either side
// of a mapping. Attributes the link ignores are left out, so a domain's
// own defaults for them do not make a write look like someone else's.
func (r *Rules) UserFingerprint(u UserState) string {
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

// GroupFingerprint digests what the link compares of a group: displayName,
// the copied attributes and the members (ids in the group's own domain).
func (r *Rules) GroupFingerprint(g GroupState) string {
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
