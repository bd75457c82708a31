package seata

import (
	"context"

	"google.golang.org/grpc"

	"github.com/strata-db/strata/txcoord"
	"github.com/strata-db/strata/txcoord/txpb"
)

var _ txcoord.GRPCService = (*Module)(nil)

// RegisterGRPC serves SeataAdmin on the node's gRPC address, so that a
// proxy's SHOW STRATA TRANSACTIONS can list Seata's global transactions
// through the connection it already has to the coordinator.
func (m *Module) RegisterGRPC(s *grpc.Server) {
	txpb.RegisterSeataAdminServer(s, seataAdmin{m: m})
}

type seataAdmin struct {
	txpb.UnimplementedSeataAdminServer
	m *Module
}

func (a seataAdmin) ListGlobal(_ context.Context, req *txpb.ListGlobalRequest) (*txpb.ListGlobalResponse, error) {
	limit := int(req.GetLimit())
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	out := &txpb.ListGlobalResponse{}
	for _, g := range a.m.List() {
		if len(out.Globals) >= limit {
			break
		}
		v := &txpb.SeataGlobal{Xid: g.XID, Name: g.Name, Status: StatusName(g.Status), BeginMs: g.BeginMs}
		for _, b := range g.Branches {
			v.Resources = append(v.Resources, b.Resource)
		}
		out.Globals = append(out.Globals, v)
	}
	return out, nil
}
