package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation a workload client made: what, when (offsets from the
// start of the drill), and whether it was acknowledged. An operation that
// failed is indeterminate unless the workload knows better: it may have
// taken effect.
type Op struct {
	Workload string        `json:"workload"`
	Client   int           `json:"client"`
	Kind     string        `json:"kind"`
	Key      int64         `json:"key,omitempty"`
	Value    int64         `json:"value,omitempty"`
	Value2   int64         `json:"value2,omitempty"`
	Ranges   [][2]uint64   `json:"ranges,omitempty"` // ids: [start, count]
	Start    time.Duration `json:"start"`
	End      time.Duration `json:"end"`
	OK       bool          `json:"ok"`
	Err      string        `json:"err,omitempty"`
}

// String names the operation for an anomaly report.
func (o Op) String() string {
	what := o.Kind
	switch o.Kind {
	case "insert":
		what = fmt.Sprintf("insert id=%d", o.Key)
	case "write":
		what = fmt.Sprintf("write k=%d v=%d", o.Key, o.Value)
	case "read":
		what = fmt.Sprintf("read k=%d → %d", o.Key, o.Value)
	case "transfer":
		what = fmt.Sprintf("transfer #%d %d→%d amount %d", o.Value2, o.Key, o.Value, o.Ranges[0][0])
	case "balance":
		what = fmt.Sprintf("read total=%d min=%d", o.Key, o.Value)
	case "fetch":
		what = "fetch"
		for i, r := range o.Ranges {
			if i == 3 {
				what += " …"
				break
			}
			what += fmt.Sprintf(" [%d..%d]", r[0], r[0]+r[1]-1)
		}
	}
	st := "ok"
	if !o.OK {
		st = "failed: " + o.Err
		if len(st) > 80 {
			st = st[:80] + "…"
		}
	}
	return fmt.Sprintf("%s client %d: %s at %s–%s, %s", o.Workload, o.Client, what, fmtOffset(o.Start), fmtOffset(o.End), st)
}

func fmtOffset(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// recorder collects every workload's operations and the per-second
// figures of the timeline. Safe for concurrent use.
type recorder struct {
	t0 time.Time

	mu  sync.Mutex
	ops map[string][]Op
	ack map[string]int // acknowledged operations per workload
	sec []*bucket

	nOps, nErr atomic.Int64
}

type bucket struct {
	ops, errs int
	lat       []time.Duration // a reservoir sample
	seen      int
}

const reservoir = 2000

func newRecorder(t0 time.Time) *recorder {
	return &recorder{t0: t0, ops: map[string][]Op{}, ack: map[string]int{}}
}

// acked is how many operations of a workload were acknowledged.
func (r *recorder) acked(workload string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ack[workload]
}

func (r *recorder) now() time.Duration { return time.Since(r.t0) }

// add records an op (keep=false: counted in the timeline only).
func (r *recorder) add(o Op, keep bool) {
	if o.OK {
		r.nOps.Add(1)
	} else {
		r.nErr.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if keep {
		r.ops[o.Workload] = append(r.ops[o.Workload], o)
	}
	if o.OK {
		r.ack[o.Workload]++
	}
	i := int(o.End / time.Second)
	for len(r.sec) <= i {
		r.sec = append(r.sec, &bucket{})
	}
	b := r.sec[i]
	if !o.OK {
		b.errs++
		return
	}
	b.ops++
	b.seen++
	d := o.End - o.Start
	if len(b.lat) < reservoir {
		b.lat = append(b.lat, d)
	} else if j := rand.IntN(b.seen); j < reservoir {
		b.lat[j] = d
	}
}

func (r *recorder) history(workload string) []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops[workload]...)
}

// Second is one second of the timeline.
type Second struct {
	T      int     `json:"t"`
	Ops    int     `json:"ops"`
	Errors int     `json:"errors"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
}

func (r *recorder) timeline() []Second {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Second, len(r.sec))
	for i, b := range r.sec {
		s := Second{T: i, Ops: b.ops, Errors: b.errs}
		if len(b.lat) > 0 {
			l := append([]time.Duration(nil), b.lat...)
			sort.Slice(l, func(a, c int) bool { return l[a] < l[c] })
			s.P50ms = ms(l[len(l)/2])
			s.P99ms = ms(l[len(l)*99/100])
		}
		out[i] = s
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
