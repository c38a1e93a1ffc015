package planner

import "time"

// Kind is the kind of object a mapping is for.
type Kind string

// Kinds of mapped objects.
const (
	KindUser  Kind = "user"
	KindGroup Kind = "group"
)

// Origin says how iamflow came to manage a target object.
type Origin string

// Origins.
const (
	// OriginCreated: iamflow created the object.
	OriginCreated Origin = "created"
	// OriginAdopted: the object existed and iamflow matched and adopted it.
	OriginAdopted Origin = "adopted"
)

// Mapping records that a source object is a target object.
type Mapping struct {
	SourceID string `json:"source_id"`
	TargetID string `json:"target_id"`
	// Origin is how iamflow came to manage the object of the forward
	// mapping's target.
	Origin Origin `json:"origin"`
	// Reverse marks the entry Put writes for the opposite direction: its
	// "target" is the original object, which iamflow did not create or adopt.
	Reverse bool      `json:"reverse,omitempty"`
	Updated time.Time `json:"updated"`
	// Recovered marks a mapping found by its copy's externalId and not
	// stored yet (Plan.Recovered); it is never stored itself.
	Recovered bool `json:"-"`
}

// Managed reports whether iamflow created or adopted the target object, and
// so may delete it under the link's delete policy. A reverse entry is never
// managed: a bidirectional link copies changes back to the original but
// does not delete it unless delete.only_managed is false.
func (m Mapping) Managed() bool {
	return !m.Reverse && (m.Origin == OriginCreated || m.Origin == OriginAdopted)
}
