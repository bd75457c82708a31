package executor

import (
	"sync"
	"time"
)

// deepStacks runs work that needs a deep stack on goroutines kept for it,
// rather than on the client connection's goroutine.
//
// Why: vitess's parser (a yacc automaton with a large frame) needs about
// 20 KiB of stack, and a goroutine's stack, once grown, stays grown until
// garbage collections halve it one at a time. A connection's goroutine
// that parsed once would keep 32 KiB while it waits for its client, most
// of an idle connection's cost. The hand-over costs about a microsecond,
// against tens for a parse (cached statements are not parsed).
type deepStacks struct {
	work chan *deepJob
	jobs sync.Pool
}

type deepJob struct {
	fn   func()
	done chan struct{}
}

// deepIdle is how long a worker waits for work before it ends.
const deepIdle = 10 * time.Second

func newDeepStacks() *deepStacks { return &deepStacks{work: make(chan *deepJob)} }

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
		go d.worker(j) // every worker is busy
	}
	<-j.done
	j.fn = nil
	d.jobs.Put(j)
}

func (d *deepStacks) worker(j *deepJob) {
	t := time.NewTimer(deepIdle)
	defer t.Stop()
	for {
		j.fn()
		j.done <- struct{}{}
		select {
		case j = <-d.work:
			t.Reset(deepIdle)
		case <-t.C:
			return
		}
	}
}
