package executor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// deepStacks runs work that needs a deep stack on goroutines kept for it,
// rather than on the client connection's goroutine.
//
// Why: vitess's parser (a yacc automaton whose one function has a frame of
// many kilobytes) needs about 20 KiB of stack, and a goroutine's stack,
// once grown, stays grown until garbage collections halve it one at a
// time. A connection's goroutine that parsed once (a USE at login is
// enough) would keep 32 KiB while it waits for its client: most of what an
// idle connection cost. The hand-over is two goroutine switches, well under
// a microsecond against the several of a parse (cached shapes are not
// parsed at all).
type deepStacks struct {
	work    chan *deepJob
	quit    chan struct{}
	stopped sync.Once
	idle    atomic.Int32 // workers waiting for work
	maxIdle int32        // more than these end after their job
	jobs    sync.Pool
}

type deepJob struct {
	fn   func()
	done chan struct{}
}

func newDeepStacks() *deepStacks {
	return &deepStacks{work: make(chan *deepJob), quit: make(chan struct{}), maxIdle: int32(max(4, 2*runtime.GOMAXPROCS(0)))}
}

// run runs fn on a worker and returns when it has; a panic in fn is fn's
// to recover.
func (d *deepStacks) run(fn func()) {
	j, _ := d.jobs.Get().(*deepJob)
	if j == nil {
		j = &deepJob{done: make(chan struct{}, 1)}
	}
	j.fn = fn
	select {
	case d.work <- j:
	default:
		go d.worker(j) // every worker is busy (or none was started yet)
	}
	<-j.done
	j.fn = nil
	d.jobs.Put(j)
}

func (d *deepStacks) worker(j *deepJob) {
	for {
		j.fn()
		j.done <- struct{}{}
		if d.idle.Add(1) > d.maxIdle {
			d.idle.Add(-1)
			return
		}
		select {
		case j = <-d.work:
			d.idle.Add(-1)
		case <-d.quit:
			d.idle.Add(-1)
			return
		}
	}
}

// stop ends the idle workers; work run after it still runs (on a worker
// that ends after it).
func (d *deepStacks) stop() { d.stopped.Do(func() { close(d.quit) }) }
