package challenge

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

func vectorSeed() [32]byte {
	var job spec.JobID
	for i := range job {
		job[i] = byte(i)
	}
	var root merkle.Digest
	for i := range root {
		root[i] = 0xff
	}
	return Seed(job, root, []byte("beluga test beacon"))
}

// The vectors were computed by an independent Python implementation of the
// SPEC.md text (hashlib, 128-bit integers), not by this package.
func TestVectors(t *testing.T) {
	seed := vectorSeed()
	if got, want := hex.EncodeToString(seed[:]), "a0ffc5d0ca8175b4ea3936acd7854996cb12f82792e220b614bf9a576fa6ac96"; got != want {
		t.Fatalf("Seed = %s, want %s", got, want)
	}
	for _, c := range []struct {
		segments, count int
		want            []int
	}{
		{1000, 8, []int{205, 246, 510, 635, 703, 739, 881, 885}},
		{1 << 40, 5, []int{272124186911, 701084614478, 775527800373, 817951302193, 975648543226}},
		{10, 10, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{20, 12, []int{2, 3, 5, 7, 8, 9, 10, 11, 12, 13, 16, 18}},
		{7, 0, []int{}},
		{0, 0, []int{}},
	} {
		if int64(int(int64(c.segments))) != int64(c.segments) {
			continue // 32-bit int
		}
		got, err := Sample(seed, c.segments, c.count)
		if err != nil || !slices.Equal(got, c.want) || got == nil {
			t.Errorf("Sample(%d, %d) = %v, %v; want %v", c.segments, c.count, got, err, c.want)
		}
	}
}

// TestSeedByHand recomputes the seed from its definition.
func TestSeedByHand(t *testing.T) {
	var job spec.JobID
	job[3] = 7
	var root merkle.Digest
	root[31] = 9
	beacon := bytes.Repeat([]byte{0xa5}, 256)
	msg := append([]byte("beluga/challenge/v1\x00"), job[:]...)
	msg = append(msg, root[:]...)
	msg = binary.LittleEndian.AppendUint32(msg, 256)
	msg = append(msg, beacon...)
	if Seed(job, root, beacon) != sha256.Sum256(msg) {
		t.Fatal("Seed does not follow its definition")
	}
	// Every input moves the seed.
	base := Seed(job, root, beacon)
	job2, root2 := job, root
	job2[0] ^= 1
	root2[0] ^= 1
	for name, s := range map[string][32]byte{
		"job":    Seed(job2, root, beacon),
		"root":   Seed(job, root2, beacon),
		"beacon": Seed(job, root, beacon[:255]),
	} {
		if s == base {
			t.Errorf("changing the %s does not change the seed", name)
		}
	}
}

func TestCheckBeacon(t *testing.T) {
	for n, ok := range map[int]bool{0: false, 1: true, 32: true, 256: true, 257: false, 4096: false} {
		err := CheckBeacon(make([]byte, n))
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrBeacon)) {
			t.Errorf("CheckBeacon(%d bytes) = %v", n, err)
		}
	}
}

func TestSampleErrors(t *testing.T) {
	var seed [32]byte
	for _, c := range [][2]int{{-1, 0}, {5, -1}, {5, 6}, {0, 1}, {MaxCount + 1, MaxCount + 1}} {
		if got, err := Sample(seed, c[0], c[1]); !errors.Is(err, ErrCount) || got != nil {
			t.Errorf("Sample(%d, %d) = %v, %v; want ErrCount", c[0], c[1], got, err)
		}
	}
}

// checkSample checks the postconditions of a successful Sample.
func checkSample(t *testing.T, got []int, segments, count int) {
	t.Helper()
	if len(got) != count {
		t.Fatalf("Sample(%d, %d) returned %d indices", segments, count, len(got))
	}
	for i, v := range got {
		if v < 0 || v >= segments || (i > 0 && v <= got[i-1]) {
			t.Fatalf("Sample(%d, %d) = %v: not distinct, sorted and in range", segments, count, got)
		}
	}
}

func TestSampleDeterministicAndDistinct(t *testing.T) {
	seed := vectorSeed()
	for _, c := range [][2]int{{1, 1}, {2, 1}, {100, 99}, {10_000, 459}, {1 << 30, 1000}, {MaxCount, MaxCount}} {
		a, err := Sample(seed, c[0], c[1])
		if err != nil {
			t.Fatal(err)
		}
		checkSample(t, a, c[0], c[1])
		b, _ := Sample(seed, c[0], c[1])
		if !slices.Equal(a, b) {
			t.Fatalf("Sample(%d, %d) is not deterministic", c[0], c[1])
		}
	}
	seed2 := seed
	seed2[0] ^= 1
	a, _ := Sample(seed, 10_000, 100)
	b, _ := Sample(seed2, 10_000, 100)
	if slices.Equal(a, b) {
		t.Fatal("different seeds give the same sample")
	}
}

// TestSampleHugeTrace samples from 2^40 segments: memory is O(count).
func TestSampleHugeTrace(t *testing.T) {
	const huge = int64(1) << 40
	if int64(int(huge)) != huge {
		t.Skip("32-bit int")
	}
	got, err := Sample(vectorSeed(), int(huge), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	checkSample(t, got, int(huge), 10_000)
}

// chiSquare returns Σ (obs − exp)² / exp for equal expected counts.
func chiSquare(counts []int, total int) float64 {
	exp := float64(total) / float64(len(counts))
	var x float64
	for _, c := range counts {
		d := float64(c) - exp
		x += d * d / exp
	}
	return x
}

// TestSampleUniform draws 3 of 10 segments under 60,000 seeds (one per
// beacon) and checks that each of the C(10,3) = 120 subsets, and each
// index, comes up about equally often. With 119 degrees of freedom the
// chi-square statistic has mean 119 and standard deviation 15.4; the bound
// is 6 standard deviations. The seeds are fixed, so the test is exact.
func TestSampleUniform(t *testing.T) {
	const trials = 60_000
	subsets := map[[3]int]int{}
	index := make([]int, 10)
	var job spec.JobID
	var root merkle.Digest
	for i := range trials {
		s, err := Sample(Seed(job, root, binary.LittleEndian.AppendUint64(nil, uint64(i))), 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		subsets[[3]int(s)]++
		for _, v := range s {
			index[v]++
		}
	}
	if len(subsets) != 120 {
		t.Fatalf("%d distinct subsets, want 120", len(subsets))
	}
	counts := make([]int, 0, 120)
	for _, c := range subsets {
		counts = append(counts, c)
	}
	xs := chiSquare(counts, trials)
	xi := chiSquare(index, 3*trials)
	t.Logf("subsets: chi2 = %.1f (df 119); indices: chi2 = %.1f (df 9)", xs, xi)
	if xs > 119+6*15.4 {
		t.Errorf("subset chi-square %.1f: not uniform", xs)
	}
	if xi > 9+6*4.3 {
		t.Errorf("index chi-square %.1f: not uniform", xi)
	}
}

// TestSampleUniformLarge checks the index marginals on a larger trace,
// where Floyd's collision branch is rare: 50 of 1000 segments under 20,000
// seeds, each index expected 1000 times (df 999, sd 44.7).
func TestSampleUniformLarge(t *testing.T) {
	const trials = 20_000
	index := make([]int, 1000)
	var job spec.JobID
	var root merkle.Digest
	root[0] = 1
	for i := range trials {
		s, _ := Sample(Seed(job, root, binary.LittleEndian.AppendUint64(nil, uint64(i))), 1000, 50)
		for _, v := range s {
			index[v]++
		}
	}
	x := chiSquare(index, 50*trials)
	t.Logf("indices: chi2 = %.1f (df 999)", x)
	if x > 999+6*44.7 {
		t.Errorf("index chi-square %.1f: not uniform", x)
	}
}

func FuzzSample(f *testing.F) {
	seed := vectorSeed()
	for _, c := range [][2]int64{{1000, 8}, {1 << 40, 5}, {10, 10}, {20, 12}, {0, 0}, {5, 6}, {-1, 0}, {3, -2}} {
		f.Add(seed[:], c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, seedBytes []byte, segments, count int64) {
		var seed [32]byte
		copy(seed[:], seedBytes)
		if int64(int(segments)) != segments || int64(int(count)) != count {
			return
		}
		got, err := Sample(seed, int(segments), int(count))
		valid := segments >= 0 && count >= 0 && count <= segments && count <= MaxCount
		if valid != (err == nil) {
			t.Fatalf("Sample(%d, %d): err = %v", segments, count, err)
		}
		if err != nil {
			if !errors.Is(err, ErrCount) || got != nil {
				t.Fatalf("Sample(%d, %d) = %v, %v", segments, count, got, err)
			}
			return
		}
		checkSample(t, got, int(segments), int(count))
		again, _ := Sample(seed, int(segments), int(count))
		if !slices.Equal(got, again) {
			t.Fatal("not deterministic")
		}
	})
}

func BenchmarkSample(b *testing.B) {
	seed := vectorSeed()
	for b.Loop() {
		Sample(seed, 10_000, 459)
	}
}
