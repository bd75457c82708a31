package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options are a drill run's settings besides the drill file.
type Options struct {
	// Binary is the strata binary a local target runs (the proxy, the ID
	// service). `strata chaos run` passes its own executable.
	Binary string
	// StateDir holds the journal (DefaultStateDir if empty).
	StateDir string
	// Dir is where a local stack keeps its data (a temporary directory,
	// removed at the end, if empty).
	Dir string
	// Short runs the short form (ShortDuration, faults scaled).
	Short bool
	// Env is added to the environment of the processes a local target
	// starts (the chaosdebug switches, STRATA_CHAOSDEBUG, in tests).
	Env []string
	// Progress receives the live progress line (nil: none). TTY picks
	// carriage-return updates over one line every few seconds.
	Progress io.Writer
	TTY      bool
	Logger   *slog.Logger
}

// FaultRecord is when a fault was active and how its injection and
// recovery went.
type FaultRecord struct {
	Name       string  `json:"name"`
	Start      float64 `json:"start_s"`
	End        float64 `json:"end_s"`
	InjectErr  string  `json:"inject_error,omitempty"`
	RecoverErr string  `json:"recover_error,omitempty"`
}

// Report is a drill's outcome.
type Report struct {
	Drill       string        `json:"drill"`
	Description string        `json:"description,omitempty"`
	Target      string        `json:"target"`
	Short       bool          `json:"short"`
	Started     time.Time     `json:"started"`
	Seconds     float64       `json:"seconds"`
	Passed      bool          `json:"passed"`
	Error       string        `json:"error,omitempty"`
	Ops         int64         `json:"ops"`
	Errors      int64         `json:"errors"`
	Faults      []FaultRecord `json:"faults"`
	Checks      []CheckResult `json:"checks"`
	Timeline    []Second      `json:"timeline"`
}

// Run runs a drill and returns its report. The error is for a drill that
// could not run (a stack that did not start, a fault that could not be
// injected or undone, Ctrl-C); failed checks are in the report. Every fault
// is undone before Run returns, whatever happened.
func Run(ctx context.Context, d *Drill, o Options) (*Report, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rep := &Report{Drill: d.Name, Description: d.Description, Short: o.Short, Started: time.Now().UTC()}
	stateDir := o.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir()
	}
	j, err := openJournal(stateDir, d.Name)
	if err != nil {
		return rep, err
	}
	defer j.close()

	var s *stack
	if d.Target.Local != nil {
		rep.Target = fmt.Sprintf("local: %d shards × (primary + %d replicas), %d ID service nodes, %d coordinator nodes", d.Target.Local.Shards, d.Target.Local.Replicas, d.Target.Local.IDServers, d.Target.Local.TXCoords)
		s, err = startLocal(ctx, d.Target.Local, StackOptions{Binary: o.Binary, Dir: o.Dir, Env: o.Env, Logger: log}, j)
	} else {
		rep.Target = "external: proxy " + d.Target.External.Proxy
		s, err = attachExternal(d.Target.External, log, j)
	}
	if err != nil {
		rep.Error = err.Error()
		return rep, err
	}
	defer func() {
		s.close()
		s.removeDir()
	}()

	duration := d.Duration.D()
	scale := 1.0
	if o.Short && d.ShortDuration > 0 {
		scale = float64(d.ShortDuration) / float64(d.Duration)
		duration = d.ShortDuration.D()
	}

	runID := rand.Int64N(1 << 14)
	var wls []workload
	var kinds []string
	for _, spec := range d.Workloads {
		w, err := newWorkload(s, spec, runID)
		if err != nil {
			return rep, err
		}
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err = w.Setup(sctx)
		cancel()
		if err != nil {
			rep.Error = fmt.Sprintf("workload %s: setup: %v", spec.Kind, err)
			return rep, errors.New(rep.Error)
		}
		wls = append(wls, w)
		kinds = append(kinds, spec.Kind)
	}

	faults := make([]Fault, len(d.Faults))
	for i, fs := range d.Faults {
		if faults[i], err = newFault(s, fs); err != nil {
			return rep, err
		}
	}

	t0 := time.Now()
	rec := newRecorder(t0)
	wctx, stopLoad := context.WithTimeout(ctx, duration)
	defer stopLoad()
	var load sync.WaitGroup
	for i, w := range wls {
		for c := 0; c < d.Workloads[i].Clients; c++ {
			load.Add(1)
			go func() {
				defer load.Done()
				w.Run(wctx, c, rec)
			}()
		}
	}

	// The fault schedule: each fault in its own goroutine; every one is
	// undone by the end of the load, or at once when ctx ends.
	act := &active{m: map[int]string{}}
	recs := make([]FaultRecord, len(faults))
	var fwg sync.WaitGroup
	for i, f := range faults {
		fs := d.Faults[i]
		at := time.Duration(float64(fs.At) * scale)
		until := duration
		if fs.For > 0 {
			until = min(at+time.Duration(float64(fs.For)*scale), duration)
		}
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			if !sleepCtx(wctx, time.Until(t0.Add(at))) {
				recs[i] = FaultRecord{Name: f.Name(), Start: -1, End: -1, InjectErr: "not injected: the drill ended first"}
				return
			}
			r := FaultRecord{Start: time.Since(t0).Seconds()}
			ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err := f.Inject(ictx)
			cancel()
			r.Name = f.Name()
			if err != nil {
				r.InjectErr = err.Error()
				log.Warn("chaos: inject failed", "fault", f.Name(), "err", err)
			} else {
				act.set(i, f.Name())
				sleepCtx(wctx, time.Until(t0.Add(until)))
			}
			// Recover even when ctx is done: cleanup is guaranteed.
			rctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			if err := f.Recover(rctx); err != nil {
				r.RecoverErr = err.Error()
				log.Warn("chaos: recover failed", "fault", f.Name(), "err", err)
			}
			cancel()
			act.del(i)
			r.End = time.Since(t0).Seconds()
			recs[i] = r
		}()
	}

	done := make(chan struct{})
	go progress(o, t0, duration, rec, act, done)
	load.Wait()
	fwg.Wait()
	close(done)
	rep.Faults = recs
	rep.Ops, rep.Errors = rec.nOps.Load(), rec.nErr.Load()
	rep.Timeline = rec.timeline()
	// The second after the load stopped holds only the last few
	// operations' ends: it would read as a drop in throughput.
	if n := int(duration / time.Second); len(rep.Timeline) > n && n > 0 {
		rep.Timeline = rep.Timeline[:n]
	}
	rep.Seconds = time.Since(t0).Seconds()

	var problems []string
	for _, r := range recs {
		if r.InjectErr != "" {
			problems = append(problems, fmt.Sprintf("fault %s: %s", r.Name, r.InjectErr))
		}
		if r.RecoverErr != "" {
			problems = append(problems, fmt.Sprintf("fault %s: recover: %s", r.Name, r.RecoverErr))
		}
	}
	if ctx.Err() != nil {
		rep.Error = "interrupted: " + ctx.Err().Error() + " (every fault was undone)"
		return rep, errors.New(rep.Error)
	}

	// Let the stack settle before reading the final state.
	sleepCtx(ctx, d.Settle.D())
	if s.topo != nil || s.dbRoot != "" {
		wc, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := s.waitReplicated(wc); err != nil {
			log.Warn("chaos: replicas did not catch up before the checks", "err", err)
		}
		cancel()
	}
	checks := d.Checks
	if len(checks) == 0 {
		checks = kinds
	}
	rep.Passed = len(problems) == 0
	for i, w := range wls {
		if !contains(checks, kinds[i]) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cr := w.Check(cctx, rec)
		cancel()
		// A check over a history with nothing acknowledged would pass
		// without having checked anything (e.g. cross-shard transfers
		// that the proxy refuses): that is no pass.
		if rec.acked(kinds[i]) == 0 {
			cr.add(Anomaly{Kind: "nothing checked", Detail: fmt.Sprintf("no %s operation was acknowledged during the drill", kinds[i])})
		}
		rep.Checks = append(rep.Checks, cr)
		rep.Passed = rep.Passed && cr.Passed
	}
	if contains(checks, "xa") {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cr := s.checkXA(cctx)
		cancel()
		rep.Checks = append(rep.Checks, cr)
		rep.Passed = rep.Passed && cr.Passed
	}
	if len(problems) > 0 {
		rep.Error = strings.Join(problems, "; ")
	}
	return rep, nil
}

// active is the set of faults in effect, for the progress line.
type active struct {
	mu sync.Mutex
	m  map[int]string
}

func (a *active) set(i int, n string) { a.mu.Lock(); a.m[i] = n; a.mu.Unlock() }
func (a *active) del(i int)           { a.mu.Lock(); delete(a.m, i); a.mu.Unlock() }
func (a *active) names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, n := range a.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// progress prints the live line: elapsed, ops, errors, faults active.
func progress(o Options, t0 time.Time, total time.Duration, rec *recorder, act *active, done <-chan struct{}) {
	if o.Progress == nil {
		return
	}
	every := 5 * time.Second
	if o.TTY {
		every = 500 * time.Millisecond
	}
	tk := time.NewTicker(every)
	defer tk.Stop()
	line := func() string {
		f := act.names()
		fs := "none"
		if len(f) > 0 {
			fs = strings.Join(f, ", ")
		}
		return fmt.Sprintf("%5.1fs/%.0fs  ops %d  errors %d  faults active: %s", time.Since(t0).Seconds(), total.Seconds(), rec.nOps.Load(), rec.nErr.Load(), fs)
	}
	for {
		select {
		case <-done:
			if o.TTY {
				fmt.Fprintf(o.Progress, "\r\033[K%s\n", line())
			}
			return
		case <-tk.C:
			if o.TTY {
				fmt.Fprintf(o.Progress, "\r\033[K%s", line())
			} else {
				fmt.Fprintln(o.Progress, line())
			}
		}
	}
}
