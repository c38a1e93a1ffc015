package bus

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"
)

// Msg is a message delivered to a [Handler]: its content and where it sits
// in the stream. The handler may read but should not keep it after returning.
type Msg struct {
	// Subject the message was published on.
	Subject string
	// Data is the payload.
	Data []byte
	// Header is a copy of the message headers (trace context, Nats-Msg-Id, ...).
	Header nats.Header
	// Stream the message is stored in.
	Stream string
	// StreamSeq is the message's sequence in Stream.
	StreamSeq uint64
	// ConsumerSeq is the delivery's sequence in the consumer.
	ConsumerSeq uint64
	// NumDelivered counts deliveries of this message, 1 for the first.
	NumDelivered uint64
	// Timestamp is when the stream stored the message.
	Timestamp time.Time
	// MsgID is the Nats-Msg-Id header, empty if none.
	MsgID string
	// Pending is how many of the consumer's messages were still waiting to
	// be delivered when this one was (JetStream's count at delivery): a
	// handler can tell a backlog from a trickle.
	Pending uint64
}

// Handler does the work a message triggers and says what becomes of it.
// ctx carries the trace of the publisher (a consumer span, child of the
// producer span) and is cancelled only if the consumer stops and the handler
// outlives the drain timeout.
type Handler func(ctx context.Context, m *Msg) Result

// Middleware wraps a Handler.
type Middleware func(Handler) Handler

// Chain composes middlewares: Chain(a, b)(h) runs a, then b, then h.
func Chain(mws ...Middleware) Middleware {
	return func(h Handler) Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
}

// PanicError is the error of the Retry that [Recover] returns for a panic.
type PanicError struct {
	// Value is what the handler panicked with.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error is "panic: <value>".
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Recover turns a panic in next into Retry(&PanicError{...}), so a bug costs a
// retry and, if it persists, a dead letter, not the process. Consumers always
// apply it, outermost.
func Recover(next Handler) Handler {
	return func(ctx context.Context, m *Msg) (res Result) {
		defer func() {
			if v := recover(); v != nil {
				res = Retry(&PanicError{Value: v, Stack: debug.Stack()})
			}
		}()
		return next(ctx, m)
	}
}
