package chaos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

func sortFunc[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}

// ---- register: single-key registers through the proxy, linearizable ----

type registerWorkload struct{ wbase }

func (w *registerWorkload) keys() int64 { return pInt(w.spec.Params, "keys", 4) }
func (w *registerWorkload) key(j int64) int64 {
	return w.runID<<32 | j
}

func (w *registerWorkload) Setup(ctx context.Context) error {
	d, err := w.s.openProxy(w.s.dbSharded)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS registers (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)"); err != nil {
		return err
	}
	for j := int64(0); j < w.keys(); j++ {
		if _, err := d.ExecContext(ctx, "INSERT INTO registers (k, v) VALUES (?, 0) ON DUPLICATE KEY UPDATE v = 0", w.key(j)); err != nil {
			return err
		}
	}
	return nil
}

func (w *registerWorkload) Run(ctx context.Context, client int, rec *recorder) {
	level := pString(w.spec.Params, "consistency", "strong")
	s, err := w.newSess(w.s.dbSharded, "SET strata_read_consistency = '"+level+"'")
	if err != nil {
		return
	}
	defer s.close()
	for n := int64(1); ctx.Err() == nil; n++ {
		t := time.Now()
		k := w.key(rand.Int64N(w.keys()))
		c, err := s.get(ctx)
		if err != nil {
			rec.add(Op{Workload: "register", Client: client, Kind: "read", Key: k, Start: rec.now(), End: rec.now(), Err: err.Error()}, false)
			s.fail()
			w.pace(ctx, t)
			continue
		}
		oc, cancel := context.WithTimeout(ctx, opTimeout)
		if rand.IntN(2) == 0 {
			v := int64(client+1)<<32 | n
			o := Op{Workload: "register", Client: client, Kind: "write", Key: k, Value: v, Start: rec.now()}
			_, err = c.ExecContext(oc, "INSERT INTO registers (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)", k, v)
			o.End, o.OK, o.Err = rec.now(), err == nil, errText(err)
			rec.add(o, true)
		} else {
			o := Op{Workload: "register", Client: client, Kind: "read", Key: k, Start: rec.now()}
			err = c.QueryRowContext(oc, "SELECT v FROM registers WHERE k = ?", k).Scan(&o.Value)
			if errors.Is(err, sql.ErrNoRows) {
				err = nil
			}
			o.End, o.OK, o.Err = rec.now(), err == nil, errText(err)
			rec.add(o, err == nil) // a failed read says nothing
		}
		cancel()
		if err != nil {
			s.fail()
		}
		w.pace(ctx, t)
	}
}

func (w *registerWorkload) Check(_ context.Context, rec *recorder) CheckResult {
	return checkRegisters(rec.history("register"), 20*time.Second)
}

type regInput struct {
	write bool
	v     int64
}

var registerModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.v
		}
		return output.(int64) == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("write %d", in.v)
		}
		return fmt.Sprintf("read → %d", output.(int64))
	},
}

// checkRegisters checks each key's history for linearizability with
// porcupine. A write that failed may have taken effect at any time after
// it began, so it is given no end; a failed read is left out.
func checkRegisters(hist []Op, timeout time.Duration) CheckResult {
	res := CheckResult{Name: "register", Passed: true}
	// A failed write whose value no read returned is left out: whether it
	// took effect or not, nothing saw it, so the history is linearizable
	// with it exactly when it is without it. Keeping every one of them
	// open-ended makes porcupine's search explode after an outage.
	seen := map[[2]int64]bool{}
	for _, o := range hist {
		if o.Kind == "read" && o.OK {
			seen[[2]int64{o.Key, o.Value}] = true
		}
	}
	byKey := map[int64][]int{}
	dropped := 0
	for i, o := range hist {
		if o.Kind == "read" && !o.OK {
			continue
		}
		if o.Kind == "write" && !o.OK && !seen[[2]int64{o.Key, o.Value}] {
			dropped++
			continue
		}
		byKey[o.Key] = append(byKey[o.Key], i)
	}
	keys := make([]int64, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	unknown := 0
	for _, k := range keys {
		idx := byKey[k]
		ops := make([]porcupine.Operation, len(idx))
		for j, i := range idx {
			o := hist[i]
			ret := int64(o.End)
			if !o.OK {
				ret = math.MaxInt64
			}
			ops[j] = porcupine.Operation{ClientId: o.Client, Input: regInput{o.Kind == "write", o.Value}, Call: int64(o.Start), Output: o.Value, Return: ret, Metadata: i}
		}
		r, info := porcupine.CheckOperationsVerbose(registerModel, ops, timeout)
		switch r {
		case porcupine.Unknown:
			unknown++
		case porcupine.Illegal:
			res.add(registerAnomaly(k, hist, idx, info))
		}
	}
	res.Summary = fmt.Sprintf("%d operations on %d keys checked with porcupine (%d failed writes no read saw left out)", len(hist)-dropped, len(keys), dropped)
	if unknown > 0 {
		res.Summary += fmt.Sprintf("; %d keys inconclusive (the check timed out)", unknown)
	}
	return res
}

// registerAnomaly names the operations around the point where no
// linearization could go on: the end of the longest partial one and the
// first operation (by call time) it could not place.
func registerAnomaly(k int64, hist []Op, idx []int, info porcupine.LinearizationInfo) Anomaly {
	a := Anomaly{Kind: "not linearizable", Detail: fmt.Sprintf("key %d: no order of its reads and writes agrees with real time and a register", k)}
	parts := info.PartialLinearizations()
	if len(parts) == 0 {
		return a
	}
	var best []int
	for _, p := range parts[0] {
		if len(p) > len(best) {
			best = p
		}
	}
	in := map[int]bool{}
	for _, id := range best {
		in[id] = true
	}
	var rest []int
	for j := range idx {
		if !in[j] {
			rest = append(rest, j)
		}
	}
	sortFunc(rest, func(x, y int) bool { return hist[idx[x]].Start < hist[idx[y]].Start })
	if len(best) > 0 {
		a.Ops = append(a.Ops, "last placed: "+hist[idx[best[len(best)-1]]].String())
	}
	for i, j := range rest {
		if i == 3 {
			break
		}
		label := "cannot place: "
		if i > 0 {
			label = "not reached: "
		}
		a.Ops = append(a.Ops, label+hist[idx[j]].String())
	}
	a.Detail += fmt.Sprintf(" (the longest linearizable prefix holds %d of %d operations)", len(best), len(idx))
	return a
}

// ---- cache: no read older than an acknowledged write ----

// cacheWorkload writes increasing versions of a few keys (each key has one
// writer) and reads them from every client; read_prefix is put before each
// read (a hint for the cache once it lands: until then reads go to the
// primaries, strong).
type cacheWorkload struct{ wbase }

func (w *cacheWorkload) keys() int64 { return pInt(w.spec.Params, "keys", 8) }
func (w *cacheWorkload) key(j int64) int64 {
	return w.runID<<32 | j
}

func (w *cacheWorkload) Setup(ctx context.Context) error {
	d, err := w.s.openProxy(w.s.dbSharded)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS cache_items (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)"); err != nil {
		return err
	}
	for j := int64(0); j < w.keys(); j++ {
		if _, err := d.ExecContext(ctx, "INSERT INTO cache_items (k, v) VALUES (?, 0) ON DUPLICATE KEY UPDATE v = 0", w.key(j)); err != nil {
			return err
		}
	}
	return nil
}

func (w *cacheWorkload) Run(ctx context.Context, client int, rec *recorder) {
	s, err := w.newSess(w.s.dbSharded, "SET strata_read_consistency = 'strong'")
	if err != nil {
		return
	}
	defer s.close()
	prefix := pString(w.spec.Params, "read_prefix", "")
	clients := int64(w.spec.Clients)
	var version int64
	for ctx.Err() == nil {
		t := time.Now()
		c, err := s.get(ctx)
		if err != nil {
			s.fail()
			w.pace(ctx, t)
			continue
		}
		oc, cancel := context.WithTimeout(ctx, opTimeout)
		// Keys j with j % clients == client are this client's to write.
		mine := []int64{}
		for j := int64(client); j < w.keys(); j += clients {
			mine = append(mine, j)
		}
		if len(mine) > 0 && rand.IntN(3) == 0 {
			version++
			k := w.key(mine[rand.IntN(len(mine))])
			o := Op{Workload: "cache", Client: client, Kind: "write", Key: k, Value: version, Start: rec.now()}
			_, err = c.ExecContext(oc, "UPDATE cache_items SET v = ? WHERE k = ?", version, k)
			o.End, o.OK, o.Err = rec.now(), err == nil, errText(err)
			rec.add(o, true)
		} else {
			k := w.key(rand.Int64N(w.keys()))
			o := Op{Workload: "cache", Client: client, Kind: "read", Key: k, Start: rec.now()}
			err = c.QueryRowContext(oc, prefix+"SELECT v FROM cache_items WHERE k = ?", k).Scan(&o.Value)
			o.End, o.OK, o.Err = rec.now(), err == nil, errText(err)
			rec.add(o, err == nil)
		}
		cancel()
		if err != nil {
			s.fail()
		}
		w.pace(ctx, t)
	}
}

func (w *cacheWorkload) Check(_ context.Context, rec *recorder) CheckResult {
	return checkFreshness(rec.history("cache"))
}

// checkFreshness: a read that began after a write of the key was
// acknowledged returns that write's version or a later one (versions of a
// key only grow: one writer per key).
func checkFreshness(hist []Op) CheckResult {
	res := CheckResult{Name: "cache", Passed: true}
	byKey := map[int64][]int{}
	for i, o := range hist {
		byKey[o.Key] = append(byKey[o.Key], i)
	}
	reads, stale := 0, 0
	for _, idx := range byKey {
		var writes []int
		for _, i := range idx {
			if hist[i].Kind == "write" && hist[i].OK {
				writes = append(writes, i)
			}
		}
		sortFunc(writes, func(a, b int) bool { return hist[a].End < hist[b].End })
		for _, i := range idx {
			r := hist[i]
			if r.Kind != "read" || !r.OK {
				continue
			}
			reads++
			// The newest version acknowledged before the read began.
			newest := -1
			for _, wi := range writes {
				if hist[wi].End >= r.Start {
					break
				}
				if newest < 0 || hist[wi].Value > hist[newest].Value {
					newest = wi
				}
			}
			if newest >= 0 && r.Value < hist[newest].Value {
				stale++
				res.add(Anomaly{Kind: "stale read", Detail: fmt.Sprintf("read of k=%d returned version %d after version %d was acknowledged", r.Key, r.Value, hist[newest].Value), Ops: []string{hist[newest].String(), r.String()}})
			}
		}
	}
	res.Summary = fmt.Sprintf("%d reads checked against acknowledged writes, %d stale", reads, stale)
	return res
}
