// Package deadletters is the admin API over IAM_DLQ
// (iamflow.v1.DeadLetterService): what each consumer could not do, why, the
// event it was about, and replay of one dead letter or of a consumer's all.
// It reads and replays through internal/bus, which owns the stream; every
// process serves it, since the stream is shared.
package deadletters

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"github.com/iamflow/iamflow/internal/bus"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// Limits of ListDeadLetters.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// maxPayload bounds the text of a payload that is not an identity event.
	maxPayload = 4096
)

// Bus is what the service needs of internal/bus.
type Bus interface {
	DeadLetterCounts(ctx context.Context) (map[string]uint64, error)
	ListDeadLetters(ctx context.Context, durable string, limit int) ([]bus.DeadLetter, bool, error)
	ReplayDeadLetter(ctx context.Context, seq uint64) (bus.DeadLetter, error)
	ReplayDeadLetters(ctx context.Context, durable string, max int) (int, error)
}

// Service implements iamflowv1.DeadLetterServiceServer.
type Service struct {
	iamflowv1.UnimplementedDeadLetterServiceServer
	b Bus
}

// New returns the service over b.
func New(b Bus) *Service { return &Service{b: b} }

// Endpoint is the service's gRPC service and REST routes, for the admin
// server.
func (s *Service) Endpoint() servicekit.Endpoint {
	return servicekit.NewEndpoint(iamflowv1.RegisterDeadLetterServiceServer, iamflowv1.RegisterDeadLetterServiceHandlerServer,
		iamflowv1.DeadLetterServiceServer(s))
}

// ListDeadLetters implements iamflowv1.DeadLetterServiceServer.
func (s *Service) ListDeadLetters(ctx context.Context, req *iamflowv1.ListDeadLettersRequest) (*iamflowv1.ListDeadLettersResponse, error) {
	limit, ok := servicekit.PageSize(int(req.GetLimit()), DefaultLimit, MaxLimit)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "limit %d: give 1 to %d, or 0 for %d", req.GetLimit(), MaxLimit, DefaultLimit)
	}
	if c := req.GetConsumer(); c != "" && !validName(c) {
		return nil, status.Errorf(codes.InvalidArgument, "consumer %q: a consumer name has letters, digits, '-' and '_' only", c)
	}
	counts, err := s.b.DeadLetterCounts(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	list, more, err := s.b.ListDeadLetters(ctx, req.GetConsumer(), limit)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	resp := &iamflowv1.ListDeadLettersResponse{Truncated: more}
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		resp.Counts = append(resp.Counts, &iamflowv1.DeadLetterCount{Consumer: name, Count: counts[name]})
	}
	for _, dl := range list {
		resp.DeadLetters = append(resp.DeadLetters, Proto(dl))
	}
	return resp, nil
}

// ReplayDeadLetter implements iamflowv1.DeadLetterServiceServer.
func (s *Service) ReplayDeadLetter(ctx context.Context, req *iamflowv1.ReplayDeadLetterRequest) (*iamflowv1.ReplayDeadLetterResponse, error) {
	if req.GetSeq() == 0 {
		return nil, status.Error(codes.InvalidArgument, "seq: required (the dead letter's sequence in IAM_DLQ, from ListDeadLetters)")
	}
	dl, err := s.b.ReplayDeadLetter(ctx, req.GetSeq())
	switch {
	case errors.Is(err, bus.ErrNoDeadLetter):
		return nil, status.Errorf(codes.NotFound, "dead letter %d: not in IAM_DLQ (replayed already, or expired)", req.GetSeq())
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	return &iamflowv1.ReplayDeadLetterResponse{DeadLetter: Proto(dl)}, nil
}

// ReplayConsumerDeadLetters implements iamflowv1.DeadLetterServiceServer.
func (s *Service) ReplayConsumerDeadLetters(ctx context.Context, req *iamflowv1.ReplayConsumerDeadLettersRequest) (*iamflowv1.ReplayConsumerDeadLettersResponse, error) {
	if !validName(req.GetConsumer()) {
		return nil, status.Errorf(codes.InvalidArgument, "consumer %q: name the consumer whose dead letters to replay (letters, digits, '-' and '_')", req.GetConsumer())
	}
	if req.GetMax() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "max %d: give a positive number, or 0 for all", req.GetMax())
	}
	n, err := s.b.ReplayDeadLetters(ctx, req.GetConsumer(), int(req.GetMax()))
	if err != nil {
		return &iamflowv1.ReplayConsumerDeadLettersResponse{Replayed: int32(n)},
			status.Errorf(codes.Unavailable, "replayed %d, then: %v", n, err)
	}
	return &iamflowv1.ReplayConsumerDeadLettersResponse{Replayed: int32(n)}, nil
}

// Proto is the API form of a dead letter: an identity event is decoded, any
// other payload shown as text (or its size, when it is not UTF-8).
func Proto(dl bus.DeadLetter) *iamflowv1.DeadLetter {
	out := &iamflowv1.DeadLetter{
		Seq: dl.Seq, Consumer: dl.Consumer, Reason: dl.Reason, Stream: dl.Stream, Subject: dl.Subject,
		StreamSeq: dl.StreamSeq, Deliveries: dl.Deliveries, MsgId: dl.MsgID, TraceId: traceID(headerFold(dl.Header, "traceparent")),
	}
	if !dl.Time.IsZero() {
		out.Time = timestamppb.New(dl.Time)
	}
	if dl.Stream == bus.StreamEvents {
		var ev iamflowv1.IdentityEvent
		if err := proto.Unmarshal(dl.Data, &ev); err == nil {
			out.Event = &ev
			return out
		}
	}
	switch {
	case !utf8.Valid(dl.Data):
		out.Payload = fmt.Sprintf("<%d bytes, not text>", len(dl.Data))
	case len(dl.Data) > maxPayload:
		cut := maxPayload
		for cut > 0 && !utf8.RuneStart(dl.Data[cut]) {
			cut--
		}
		out.Payload = string(dl.Data[:cut]) + "…"
	default:
		out.Payload = string(dl.Data)
	}
	return out
}

// traceID is the trace id of a W3C traceparent header
// (version-traceid-spanid-flags), or "".
func traceID(tp string) string {
	parts := strings.Split(strings.TrimSpace(tp), "-")
	if len(parts) < 4 || len(parts[1]) != 32 || strings.Trim(parts[1], "0123456789abcdef") != "" || strings.Trim(parts[1], "0") == "" {
		return ""
	}
	return parts[1]
}

// headerFold is h's first value for key, whatever the case of its name
// (nats.Header keys are case-sensitive; the propagator writes lower case).
func headerFold(h map[string][]string, key string) string {
	for k, v := range h {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// validName is the bus's rule for consumer names.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
