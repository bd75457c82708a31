package zipf

import "testing"

func TestZipfShape(t *testing.T) {
	z := New(1.01, 1000, 1)
	counts := make([]int, 1001)
	for range 200000 {
		k := z.Next()
		if k < 1 || k > 1000 {
			t.Fatalf("key %d out of 1..1000", k)
		}
		counts[k]++
	}
	// P(1)/P(2) = 2^1.01 ≈ 2.01; P(1) ≈ 1/H(1000, 1.01) ≈ 0.134.
	if r := float64(counts[1]) / float64(counts[2]); r < 1.8 || r > 2.2 {
		t.Errorf("P(1)/P(2) = %.2f, want about 2", r)
	}
	if p := float64(counts[1]) / 200000; p < 0.12 || p > 0.15 {
		t.Errorf("P(1) = %.3f, want about 0.134", p)
	}
	a, b := z.Clone(7), New(1.01, 1000, 7)
	for range 100 {
		if a.Next() != b.Next() {
			t.Fatal("Clone with seed 7 draws differently from New with seed 7")
		}
	}
}
