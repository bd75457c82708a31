package idserver

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/strata-db/strata/idserver/idpb"
)

// forwardedKey marks a request a follower forwarded to the leader, so the
// leader does not forward it again if it has just lost leadership.
const forwardedKey = "strata-forwarded"

// grpcIDs serves idpb.IDs.
type grpcIDs struct {
	idpb.UnimplementedIDsServer
	s *Server
}

func (g *grpcIDs) Next(ctx context.Context, req *idpb.NextRequest) (*idpb.NextResponse, error) {
	start := time.Now()
	var buf [4]Range
	ranges, leader, err := g.s.next(ctx, req.GetTag(), req.GetCount(), g.s.cfg.MaxGRPCCount, isForwarded(ctx), buf[:0])
	g.s.observe("grpc", "next", start, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &idpb.NextResponse{Tag: req.GetTag(), Ranges: toPB(ranges), Leader: leader}, nil
}

func (g *grpcIDs) CreateTag(ctx context.Context, req *idpb.CreateTagRequest) (*idpb.CreateTagResponse, error) {
	start := time.Now()
	step := req.GetStep()
	if step == 0 {
		step = g.s.cfg.DefaultStep
	}
	err := g.s.createTag(ctx, req.GetTag(), req.GetStart(), step, isForwarded(ctx))
	g.s.observe("grpc", "create_tag", start, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &idpb.CreateTagResponse{Tag: req.GetTag(), Start: req.GetStart(), Step: step}, nil
}

func (g *grpcIDs) Snowflake(ctx context.Context, req *idpb.SnowflakeRequest) (*idpb.NextResponse, error) {
	start := time.Now()
	var buf [4]Range
	ranges, err := g.s.Snowflake(ctx, req.GetCount(), g.s.cfg.MaxGRPCCount, buf[:0])
	g.s.observe("grpc", "snowflake", start, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &idpb.NextResponse{Tag: "snowflake", Ranges: toPB(ranges), Leader: g.s.selfGRPC}, nil
}

func (g *grpcIDs) Decode(_ context.Context, req *idpb.DecodeRequest) (*idpb.DecodeResponse, error) {
	d, err := g.s.Decode(req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &idpb.DecodeResponse{Id: d.ID, UnixMs: d.UnixMs, Worker: d.Worker, Sequence: d.Sequence}, nil
}

// grpcInternal serves idpb.Internal: followers' snowflake lease commands.
type grpcInternal struct {
	idpb.UnimplementedInternalServer
	s *Server
}

func (g *grpcInternal) ProposeSnowflake(ctx context.Context, req *idpb.ProposeRequest) (*idpb.ProposeResponse, error) {
	var c command
	if err := json.Unmarshal(req.GetCommand(), &c); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "undecodable command: %v", err)
	}
	if !g.s.node.IsLeader() {
		return nil, toStatus(g.s.notLeader("snowflake proposals go to the leader"))
	}
	grant, err := g.s.applySnowflake(ctx, c)
	var fe *fsmError
	if err != nil && !errors.As(err, &fe) {
		return nil, toStatus(err)
	}
	// FSM errors travel inside the grant, so the follower can tell a lost
	// lease from a transport failure.
	b, err := json.Marshal(grant)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode grant: %v", err)
	}
	return &idpb.ProposeResponse{Result: b}, nil
}

func toPB(rs []Range) []*idpb.Range {
	out := make([]*idpb.Range, len(rs))
	for i, r := range rs {
		out[i] = &idpb.Range{Start: r.Start, Count: r.Count}
	}
	return out
}

func fromPB(rs []*idpb.Range, out []Range) []Range {
	for _, r := range rs {
		out = append(out, Range{Start: r.GetStart(), Count: r.GetCount()})
	}
	return out
}

func toStatus(err error) error {
	if _, ok := status.FromError(err); ok && !isOurs(err) {
		return err // already a status (a forwarded call's)
	}
	return status.Error(grpcCode(err), err.Error())
}

// isOurs reports whether err is one of this package's errors rather than a
// status from a forwarded call.
func isOurs(err error) bool {
	var nl *NotLeaderError
	var cb *ClockBackwardsError
	var fe *fsmError
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrTagExists) || errors.Is(err, ErrExhausted) ||
		errors.Is(err, ErrUnavailable) || errors.Is(err, ErrClosed) ||
		errors.As(err, &nl) || errors.As(err, &cb) || errors.As(err, &fe)
}

// fromStatus turns a forwarded call's status back into this package's
// errors, so HTTP answers with the right code.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument:
		return errors.Join(ErrInvalid, errors.New(msg))
	case codes.AlreadyExists:
		return errors.Join(ErrTagExists, errors.New(msg))
	case codes.ResourceExhausted:
		return errors.Join(ErrExhausted, errors.New(msg))
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted:
		return &NotLeaderError{Reason: "leader: " + msg}
	default:
		return errors.New("idserver: leader: " + msg)
	}
}

// isForwarded reports whether another node forwarded this call.
func isForwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

func forwardCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, forwardedKey, "1")
}

// forwardAttempt bounds one forwarded call, for callers without a
// deadline (a Leaf client; the snowflake keeper): a connection to the
// leader that goes silent must not hold them until TCP gives up. The
// leader bounds each of its Raft round trips by ApplyTimeout; a call gets
// two of those.
func (s *Server) forwardAttempt(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(forwardCtx(ctx), 2*s.cfg.ApplyTimeout)
}

// forwardWait is how long a follower keeps trying to reach a leader for a
// caller (through an election, say) before it answers "unavailable".
const forwardWait = 2 * time.Second

// forwardNext asks the leader for segment IDs on behalf of a caller. While
// no leader is known or the leader is changing, it retries for up to
// forwardWait, so that a caller pinned to one node (a Leaf client, wrk)
// sees a pause rather than an error; and if this node becomes the serving
// leader meanwhile, it serves the call itself.
func (s *Server) forwardNext(ctx context.Context, tag string, count uint64, out []Range) ([]Range, string, error) {
	deadline := time.Now().Add(forwardWait)
	for {
		if s.ready.Load() {
			return s.next(ctx, tag, count, count, true, out)
		}
		cc, err := s.leaderConn()
		if err == nil {
			s.m.forwarded.Inc()
			var resp *idpb.NextResponse
			actx, cancel := s.forwardAttempt(ctx)
			resp, err = idpb.NewIDsClient(cc).Next(actx, &idpb.NextRequest{Tag: tag, Count: count})
			cancel()
			if err == nil {
				return fromPB(resp.GetRanges(), out), resp.GetLeader(), nil
			}
			err = fromStatus(err)
		}
		if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil || time.Now().After(deadline) || s.closed.Load() {
			return nil, "", err
		}
		select {
		case <-ctx.Done():
			return nil, "", err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *Server) forwardCreate(ctx context.Context, tag string, start, step uint64) error {
	cc, err := s.leaderConn()
	if err != nil {
		return err
	}
	ctx, cancel := s.forwardAttempt(ctx)
	defer cancel()
	_, err = idpb.NewIDsClient(cc).CreateTag(ctx, &idpb.CreateTagRequest{Tag: tag, Start: start, Step: step})
	if err != nil {
		return fromStatus(err)
	}
	return nil
}

func (s *Server) forwardSnowflake(ctx context.Context, c command) (workerGrant, error) {
	cc, err := s.leaderConn()
	if err != nil {
		return workerGrant{}, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return workerGrant{}, err
	}
	// The keeper's context has no deadline, and requests wait for its
	// reservation.
	ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.ApplyTimeout)
	defer cancel()
	resp, err := idpb.NewInternalClient(cc).ProposeSnowflake(ctx, &idpb.ProposeRequest{Command: b})
	if err != nil {
		return workerGrant{}, fromStatus(err)
	}
	var g workerGrant
	if err := json.Unmarshal(resp.GetResult(), &g); err != nil {
		return workerGrant{}, err
	}
	return g, g.err()
}

// observe records one API request.
func (s *Server) observe(api, method string, start time.Time, err error) {
	s.m.requests.WithLabelValues(api, method).Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.requestErrors.WithLabelValues(api, method, grpcCode(err).String()).Inc()
	}
}

// observeHot records a request of a hot path, with its histogram looked up
// once rather than per request.
func (s *Server) observeHot(h prometheus.Observer, api, method string, start time.Time, err error) {
	h.Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.requestErrors.WithLabelValues(api, method, grpcCode(err).String()).Inc()
	}
}
