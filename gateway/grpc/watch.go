package grpc

import (
	"context"
	"fmt"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/gateway"
	pb "github.com/aerolithsdb/aerolith/gateway/grpc/aerolithv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Watch streams the change feed. The subscription is pull-based: it reads the next
// message only after the previous one was handed to the transport, so a slow watcher
// holds gRPC's flow-control window plus the feed's small read-ahead, never more.
func (s *Server) Watch(req *pb.WatchRequest, stream pb.ChangeService_WatchServer) error {
	ctx := stream.Context()
	r, err := subscribeRequest(req)
	if err != nil {
		return s.status(ctx, methodWatch, err, nil)
	}
	if _, err := principal(ctx); err != nil {
		return s.status(ctx, methodWatch, err, nil)
	}
	sub, err := s.cfg.Store.Subscribe(r)
	if err != nil {
		return s.status(ctx, methodWatch, err, nil)
	}
	// The token of the last message sent (at first, where the stream starts): resuming
	// from it loses nothing the client may not have received.
	last := sub.Token()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			resume := map[string]string{"resume_token": last}
			if context.Cause(ctx) == errShuttingDown {
				return toStatus(gateway.ErrorInfo{GRPC: codes.Unavailable, Code: "unavailable",
					Message: "the server is shutting down: resume with your last resume token on another node or once this one is back"}, resume).Err()
			}
			return s.status(ctx, methodWatch, err, resume)
		}
		if err := stream.Send(watchResponse(m)); err != nil {
			return err
		}
		last = m.Token
	}
}

func subscribeRequest(req *pb.WatchRequest) (db.SubscribeRequest, error) {
	r := db.SubscribeRequest{Collections: req.Collections, Filter: req.Filter,
		IncludeBefore: req.IncludeBefore, IncludeAfter: req.IncludeAfter, From: "now"}
	switch st := req.Start.(type) {
	case nil:
	case *pb.WatchRequest_StartPoint:
		switch st.StartPoint {
		case pb.StartPoint_START_POINT_UNSPECIFIED, pb.StartPoint_START_POINT_NOW:
		case pb.StartPoint_START_POINT_BEGINNING:
			r.From = "beginning"
		default:
			return r, fmt.Errorf("%w: unknown start point %d", db.ErrInvalidArgument, st.StartPoint)
		}
	case *pb.WatchRequest_StartTime:
		if err := st.StartTime.CheckValid(); err != nil {
			return r, fmt.Errorf("%w: start_time: %v", db.ErrInvalidArgument, err)
		}
		r.From, r.Time = "time", st.StartTime.AsTime()
	case *pb.WatchRequest_ResumeToken:
		r.From, r.Token = "token", st.ResumeToken
	}
	return r, nil
}

var changeOps = map[string]pb.ChangeOp{
	feed.OpCreate: pb.ChangeOp_CHANGE_OP_CREATE,
	feed.OpUpdate: pb.ChangeOp_CHANGE_OP_UPDATE,
	feed.OpDelete: pb.ChangeOp_CHANGE_OP_DELETE,
}

func watchResponse(m feed.Message) *pb.WatchResponse {
	out := &pb.WatchResponse{ResumeToken: m.Token}
	switch m.Kind {
	case feed.KindEvent:
		e := m.Event
		ev := &pb.ChangeEvent{
			EventId: e.EventID, Source: &pb.Source{Cluster: e.Source.Cluster, Dc: e.Source.DC, Shard: e.Source.Shard},
			Type: e.Type, Op: changeOps[e.Op], Collection: e.Collection, Id: e.ID, Version: e.Version,
			Principal: e.Principal, BeforeJson: e.Before, AfterJson: e.After, Position: position(e.Position),
			Origin: e.Origin, Clock: e.Clock,
		}
		if t, err := time.Parse(time.RFC3339Nano, e.Time); err == nil {
			ev.Time = timestamppb.New(t)
		}
		out.Message = &pb.WatchResponse_Event{Event: ev}
	case feed.KindCheckpoint:
		out.Message = &pb.WatchResponse_Checkpoint{Checkpoint: &pb.Checkpoint{}}
	case feed.KindCaughtUp:
		out.Message = &pb.WatchResponse_CaughtUp{CaughtUp: &pb.CaughtUp{}}
	}
	return out
}
