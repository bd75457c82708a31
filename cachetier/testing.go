package cachetier

import (
	"math"
	"math/rand/v2"
)

// Zipf draws keys 0..n-1 with P(k) ∝ 1/(k+1)^s for any s > 0, by inverting
// the cumulative distribution: the key stream of hit-ratio tests and cache
// benchmarks, here and in consumers' packages. math/rand's Zipf needs
// s > 1, and the sysbench-style s = 1.01 is on the edge; sysbench 1.0.20
// has no zipfian distribution at all. Not safe for concurrent use: give
// each goroutine its own (WithSeed shares the distribution's table).
type Zipf struct {
	cdf []float64
	r   *rand.Rand
}

// NewZipf makes the distribution over n keys (8 bytes of table per key)
// with its own random source.
func NewZipf(s float64, n int, seed uint64) *Zipf {
	cdf := make([]float64, n)
	sum := 0.0
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), s)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return &Zipf{cdf: cdf, r: rand.New(rand.NewPCG(seed, seed))}
}

// WithSeed is the same distribution with another random source.
func (z *Zipf) WithSeed(seed uint64) *Zipf {
	return &Zipf{cdf: z.cdf, r: rand.New(rand.NewPCG(seed, seed))}
}

// Next draws a key in 0..n-1; key k is the (k+1)-th most likely.
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
	return lo
}
