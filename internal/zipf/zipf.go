// Package zipf draws keys with a Zipf distribution for any exponent s > 0
// (math/rand's Zipf needs s > 1, and the sysbench-style s = 1.01 of the
// cache figures is on that edge), by inverting the cumulative distribution.
// The benchmarks and the cache's tests share it.
//
// It owns only that; it imports nothing of the module.
package zipf

import (
	"math"
	"math/rand/v2"
)

// Zipf draws 1..n with P(k) ∝ 1/k^s. Not safe for concurrent use: one per
// goroutine (the table may be shared through Clone).
type Zipf struct {
	cdf []float64
	r   *rand.Rand
}

// New builds the distribution over 1..n with exponent s, seeded.
func New(s float64, n int, seed uint64) *Zipf {
	z := &Zipf{cdf: make([]float64, n), r: rand.New(rand.NewPCG(seed, seed))}
	sum := 0.0
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), s)
		z.cdf[i] = sum
	}
	for i := range z.cdf {
		z.cdf[i] /= sum
	}
	return z
}

// Clone shares z's table with a new source of randomness.
func (z *Zipf) Clone(seed uint64) *Zipf {
	return &Zipf{cdf: z.cdf, r: rand.New(rand.NewPCG(seed, seed))}
}

// Next draws a key in 1..n.
func (z *Zipf) Next() int {
	u := z.r.Float64()
	lo, hi := 0, len(z.cdf)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if z.cdf[mid] < u {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo + 1
}
