package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Backend failures as the edge answers them. A guard's call returns one of
// these, a *clientError (the backend refused the input: passed on as 4xx,
// not counted against the backend), or the backend's own error (502).
var (
	errBusy = errors.New("edge: backend busy")         // no free slot within the timeout: 503 backend_busy
	errOpen = errors.New("edge: backend circuit open") // failing fast: 503 circuit_open
)

// clientError is a backend's answer that the request was wrong (or asked
// for nothing that exists): the backend works.
type clientError struct {
	status int
	reason string
	msg    string
}

func (e *clientError) Error() string { return e.msg }

// guard stands in front of one backend: at most MaxInFlight calls at once,
// each bounded by Timeout, behind a circuit breaker that opens after
// Failures failures in a row and fails fast for OpenFor.
type guard struct {
	name     string
	inflight prometheus.Gauge
	sem      chan struct{}
	timeout  time.Duration
	cb       *gobreaker.CircuitBreaker[struct{}]
	m        *metrics
}

func newGuard(name string, b Backend, bc BreakerConfig, m *metrics) *guard {
	g := &guard{name: name, sem: make(chan struct{}, b.MaxInFlight), timeout: b.Timeout, m: m, inflight: m.inflight.WithLabelValues(name)}
	g.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     bc.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(bc.Failures) },
		IsSuccessful: func(err error) bool {
			var ce *clientError
			return err == nil || errors.As(err, &ce) || errors.Is(err, context.Canceled)
		},
		OnStateChange: func(_ string, _, to gobreaker.State) {
			m.breaker.WithLabelValues(name).Set(float64(to))
		},
	})
	m.breaker.WithLabelValues(name).Set(0)
	return g
}

// do runs call with a slot and the timeout, through the breaker.
func (g *guard) do(ctx context.Context, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	select {
	case g.sem <- struct{}{}:
	default:
		select {
		case g.sem <- struct{}{}:
		case <-ctx.Done():
			g.m.busy.WithLabelValues(g.name).Inc()
			return errBusy
		}
	}
	defer func() { <-g.sem }()
	g.inflight.Inc()
	defer g.inflight.Dec()
	_, err := g.cb.Execute(func() (struct{}, error) { return struct{}{}, call(ctx) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return errOpen
	}
	return err
}

// state is the breaker's state as text: closed, half-open or open.
func (g *guard) state() string { return g.cb.State().String() }

// backendError answers a failed backend call. The backend's own error
// (addresses, driver text) goes to the edge's log under the request id,
// not to the client.
func (s *Server) backendError(w http.ResponseWriter, c *reqCtx, backend string, err error) {
	var ce *clientError
	switch {
	case errors.As(err, &ce):
		writeError(w, ce.status, ce.reason, ce.msg)
	case errors.Is(err, errOpen):
		w.Header().Set("Retry-After", retryAfter(s.cfg.Breaker.OpenFor))
		writeError(w, http.StatusServiceUnavailable, "circuit_open", backend+" is failing; the edge fails fast until it recovers")
	case errors.Is(err, errBusy):
		writeError(w, http.StatusServiceUnavailable, "backend_busy", backend+": too many requests in flight")
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("edge: backend timeout", "backend", backend, "request", c.id, "err", err)
		writeError(w, http.StatusGatewayTimeout, "backend_timeout", fmt.Sprintf("%s did not answer in time (request %s)", backend, c.id))
	default:
		s.log.Warn("edge: backend error", "backend", backend, "request", c.id, "err", err)
		writeError(w, http.StatusBadGateway, "backend_error", fmt.Sprintf("%s failed (request %s; the edge's log has the cause)", backend, c.id))
	}
}
