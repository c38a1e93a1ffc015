package bus

import (
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// IsWrongRevision reports whether err is a KV compare-and-set that lost:
// the key was created or changed by someone else since it was read. A
// single server answers "wrong last sequence" (10071) or "key exists"; a
// replicated bucket may answer 10164 ("wrong last sequence", constant),
// when another update of the same key is still being proposed in the
// cluster. All three mean: read again and decide again.
func IsWrongRevision(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
