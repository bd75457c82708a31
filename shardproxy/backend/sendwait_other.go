//go:build !unix

package backend

import "net"

// sender writes a request the ordinary way where there is no poller to arm.
type sender struct{ raw net.Conn }

func newSender(raw net.Conn) *sender { return &sender{raw: raw} }

func (s *sender) send(buf []byte) error {
	_, err := s.raw.Write(buf)
	return err
}
