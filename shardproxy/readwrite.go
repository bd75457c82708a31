package shardproxy

import (
	"context"
	"fmt"

	"github.com/strata-db/strata/shardproxy/fleet"
	"github.com/strata-db/strata/shardproxy/rwsplit"
)

// This file is read/write splitting's part of the server (package rwsplit
// does the work): it starts the router when the config enables it, and
// hooks the primary hint, the strata_read_consistency session variable and
// the STRATA admin statements into the session.

// startReadWrite builds and starts the read/write router when
// read_write.enabled is set and no router was given, and binds the one
// given as Options.ReadWrite to the pools.
func (s *Server) startReadWrite(ctx context.Context, o Options) error {
	rw := o.ReadWrite
	if rw == nil && o.Router == nil && s.cfg.ReadWrite.Enabled {
		def, err := fleet.ParseConsistency(s.cfg.ReadWrite.Consistency)
		if err != nil {
			return fmt.Errorf("shardproxy: read_write: %w", err)
		}
		if rw, err = rwsplit.New(rwsplit.FleetConfig(s.cfg), def, s.reg, s.log); err != nil {
			return fmt.Errorf("shardproxy: read_write: %w", err)
		}
		s.ownRW = true
	}
	if rw == nil {
		return nil
	}
	if err := rw.Bind(s.cluster); err != nil {
		return err
	}
	s.cluster.SetRouter(rw)
	s.rw = rw
	if s.ownRW {
		if err := rw.Start(ctx); err != nil {
			rw.Close()
			return fmt.Errorf("shardproxy: read_write: %w", err)
		}
	}
	return nil
}

// stopReadWrite stops a router startReadWrite started.
func (s *Server) stopReadWrite() {
	if s.rw != nil && s.ownRW {
		_ = s.rw.Close()
	}
}

// ReadWrite is the read/write router, nil when splitting is off.
func (s *Server) ReadWrite() *rwsplit.Router { return s.rw }
