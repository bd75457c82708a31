package raftstore

import (
	"sync"
)

// LeadershipEvent is one change of this node's leadership. Consumers that
// cache leader-only state drop it on IsLeader == false and, on true, call
// Barrier before serving.
type LeadershipEvent struct {
	IsLeader bool
	Term     uint64 // the term when the change was seen
}

// broadcaster fans leadership changes out to subscribers. Each subscriber
// has its own unbounded queue and a goroutine feeding its channel, so a slow
// subscriber never blocks Raft nor the other subscribers, and none misses a
// transition. Transitions are rare, so the queues stay tiny.
type broadcaster struct {
	mu     sync.Mutex
	cur    LeadershipEvent
	subs   map[*subscription]struct{}
	closed bool
	wg     sync.WaitGroup
}

type subscription struct {
	ch    chan LeadershipEvent
	queue []LeadershipEvent // guarded by broadcaster.mu
	wake  chan struct{}     // capacity 1: "queue has grown"
	done  chan struct{}     // closed by cancel or by the node's Close
	once  sync.Once
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: map[*subscription]struct{}{}}
}

// set records this node's leadership and publishes it if it changed.
func (b *broadcaster) set(isLeader bool, term uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.cur.IsLeader == isLeader {
		return
	}
	b.cur = LeadershipEvent{IsLeader: isLeader, Term: term}
	for s := range b.subs {
		s.queue = append(s.queue, b.cur)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// subscribe starts a subscription whose first event is the current state.
func (b *broadcaster) subscribe() (<-chan LeadershipEvent, func()) {
	s := &subscription{
		ch:   make(chan LeadershipEvent, 16),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	s.queue = []LeadershipEvent{b.cur}
	s.wake <- struct{}{}
	b.subs[s] = struct{}{}
	b.wg.Add(1)
	go b.pump(s)
	cancel := func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
		s.stop()
	}
	return s.ch, cancel
}

func (s *subscription) stop() { s.once.Do(func() { close(s.done) }) }

// pump moves a subscriber's queue into its channel. When the subscription
// ends it hands over whatever still fits without blocking (so a reader sees
// the final "not leader" of a Close) and closes the channel.
func (b *broadcaster) pump(s *subscription) {
	defer b.wg.Done()
	defer close(s.ch)
	var pending []LeadershipEvent
	for {
		if len(pending) == 0 {
			select {
			case <-s.wake:
			case <-s.done:
			}
		}
		b.mu.Lock()
		pending = append(pending, s.queue...)
		s.queue = nil
		b.mu.Unlock()
		select {
		case <-s.done:
			for _, ev := range pending {
				select {
				case s.ch <- ev:
				default:
					return
				}
			}
			return
		default:
		}
		if len(pending) == 0 {
			continue
		}
		select {
		case s.ch <- pending[0]:
			pending = pending[1:]
		case <-s.done:
		}
	}
}

// close ends every subscription and waits for their goroutines.
func (b *broadcaster) close() {
	b.mu.Lock()
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	for s := range subs {
		s.stop()
	}
	b.wg.Wait()
}
