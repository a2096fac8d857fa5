package dataset

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec/prng"
)

// Bounds on Synthetic's arguments.
const (
	SyntheticMaxSamples  = 1 << 24
	SyntheticMaxFeatures = 1 << 16
	SyntheticMaxValues   = 1 << 30 // samples × features
)

// Constants of the synthetic generator; changing any changes every dataset.
const (
	// SyntheticMaxBlend is the largest blend weight m, out of 256, toward
	// the distractor prototype; above 128 the sample looks like the
	// distractor, which is what makes classes overlap.
	SyntheticMaxBlend = 136
	// SyntheticNoise bounds the per-feature noise to ±SyntheticNoise.
	SyntheticNoise = 32
)

// Stream purposes of the synthetic generator (the purpose argument of
// prng.Derive).
const (
	PurposePrototype  = "dataset/synthetic/prototype"
	PurposeLabel      = "dataset/synthetic/label"
	PurposeDistractor = "dataset/synthetic/distractor"
	PurposeBlend      = "dataset/synthetic/blend"
	PurposeNoise      = "dataset/synthetic/noise"
)

// Split indices of SyntheticSplit.
const (
	SplitTrain = 0
	SplitTest  = 1
)

// Synthetic returns n samples of `features` uint8 features in `classes`
// classes, determined by seed alone. It is the training split of
// SyntheticSplit, and Synthetic(seed, n, …) is a prefix of Synthetic(seed,
// n', …) for n ≤ n'.
//
// Arguments must satisfy 1 ≤ n ≤ 2^24, 1 ≤ features ≤ 2^16,
// 2 ≤ classes ≤ 256 and n·features ≤ 2^30; otherwise the error wraps
// ErrBadArgument.
//
// # Algorithm
//
// All arithmetic is on integers; Derive, At and Below are those of spec/prng
// (Below(r, k) = ⌊r·k / 2^64⌋). Write F = features, C = classes, s for the
// split (0 for training, 1 for test) and seed for the seed.
//
// Prototypes (shared by both splits). With the stream
// P = Derive(seed, "dataset/synthetic/prototype", F, C), class c has the
// prototype proto[c][j] = P.At(c·F + j) >> 56 (the top 8 bits), for
// 0 ≤ c < C and 0 ≤ j < F.
//
// Samples. With the four streams
//
//	L = Derive(seed, "dataset/synthetic/label", s, 0)
//	Z = Derive(seed, "dataset/synthetic/distractor", s, 0)
//	W = Derive(seed, "dataset/synthetic/blend", s, 0)
//	E = Derive(seed, "dataset/synthetic/noise", s, 0)
//
// sample i (0 ≤ i < n) has
//
//	label        y = Below(L.At(i), C)
//	distractor   z = Below(Z.At(i), C)      (z may equal y)
//	blend        m = Below(W.At(i), 137)    (0 ≤ m ≤ 136)
//
// and for 0 ≤ j < F its feature j is
//
//	b = (proto[y][j]·(256 − m) + proto[z][j]·m + 128) >> 8
//	e = Below(E.At(i·F + j), 65) − 32       (−32 ≤ e ≤ 32)
//	x[i][j] = min(max(b + e, 0), 255)
//
// Samples are stored row-major: byte i·F + j of the feature buffer is
// x[i][j], and byte i of the label buffer is y.
//
// # Difficulty
//
// A sample is its class prototype pulled toward a random distractor class
// plus bounded noise, so a linear classifier (nearest prototype) separates
// the classes and a small MLP learns them in a few hundred steps. When
// m > 128 and z ≠ y the sample is nearer the distractor than its own class,
// so about 8/137·(C−1)/C of samples are misleading: the best possible
// accuracy is about 95% for C = 10, high but not 100%.
func Synthetic(seed uint64, n, features, classes int) (*Dataset, error) {
	if err := checkSynthetic(n, features, classes); err != nil {
		return nil, err
	}
	return synthetic(seed, SplitTrain, n, features, classes, prototypes(seed, features, classes)), nil
}

// SyntheticSplit returns a training set of nTrain samples (split 0, equal to
// Synthetic(seed, nTrain, features, classes)) and a test set of nTest samples
// (split 1) over the same class prototypes, from disjoint streams. Both
// counts obey Synthetic's bounds.
func SyntheticSplit(seed uint64, nTrain, nTest, features, classes int) (train, test *Dataset, err error) {
	if err := checkSynthetic(nTrain, features, classes); err != nil {
		return nil, nil, fmt.Errorf("train: %w", err)
	}
	if err := checkSynthetic(nTest, features, classes); err != nil {
		return nil, nil, fmt.Errorf("test: %w", err)
	}
	proto := prototypes(seed, features, classes)
	return synthetic(seed, SplitTrain, nTrain, features, classes, proto),
		synthetic(seed, SplitTest, nTest, features, classes, proto), nil
}

func checkSynthetic(n, features, classes int) error {
	switch {
	case n < 1 || n > SyntheticMaxSamples:
		return fmt.Errorf("%w: %d samples, want 1..%d", ErrBadArgument, n, SyntheticMaxSamples)
	case features < 1 || features > SyntheticMaxFeatures:
		return fmt.Errorf("%w: %d features, want 1..%d", ErrBadArgument, features, SyntheticMaxFeatures)
	case classes < MinClasses || classes > MaxClasses:
		return fmt.Errorf("%w: %d classes, want %d..%d", ErrBadArgument, classes, MinClasses, MaxClasses)
	case n*features > SyntheticMaxValues: // no overflow: both are at most 2^24
		return fmt.Errorf("%w: %d samples × %d features exceeds %d values", ErrBadArgument, n, features, SyntheticMaxValues)
	}
	return nil
}

// prototypes returns proto[c·F + j] as documented on Synthetic.
func prototypes(seed uint64, features, classes int) []uint8 {
	p := prng.Derive(seed, PurposePrototype, uint64(features), uint64(classes))
	proto := make([]uint8, classes*features)
	for k := range proto {
		proto[k] = uint8(p.At(uint64(k)) >> 56)
	}
	return proto
}

// synthetic generates split s as documented on Synthetic; arguments are
// checked. It commits to the samples as it generates them, a chunk at a
// time while the chunk is still in cache, so the dataset carries its
// commitment and nothing but the samples is ever held for all of them.
func synthetic(seed uint64, split uint64, n, features, classes int, proto []uint8) *Dataset {
	var (
		ls = prng.Derive(seed, PurposeLabel, split, 0)
		zs = prng.Derive(seed, PurposeDistractor, split, 0)
		ws = prng.Derive(seed, PurposeBlend, split, 0)
		es = prng.Derive(seed, PurposeNoise, split, 0)
		c  = uint64(classes)
		f  = features
	)
	ds := &Dataset{
		Name:     fmt.Sprintf("synthetic(seed=%d,split=%d)", seed, split),
		features: features,
		classes:  classes,
		x:        make([]uint8, n*f),
		y:        make([]uint8, n),
	}
	x, y := ds.x, ds.y
	var tree rootBuilder
	leaves, scratch := chunkBuffers(n)
	for lo := 0; lo < n; lo += commitChunk {
		hi := min(lo+commitChunk, n)
		parallel(hi-lo, 256, func(from, to int) {
			buf := make([]byte, 0, 5+f)
			for i := lo + from; i < lo+to; i++ {
				label := prng.Below(ls.At(uint64(i)), c)
				z := prng.Below(zs.At(uint64(i)), c)
				m := int(prng.Below(ws.At(uint64(i)), SyntheticMaxBlend+1))
				y[i] = uint8(label)
				own, other := proto[int(label)*f:][:f], proto[int(z)*f:][:f]
				row := x[i*f:][:f]
				for j := range row {
					b := (int(own[j])*(256-m) + int(other[j])*m + 128) >> 8
					e := int(prng.Below(es.At(uint64(i*f+j)), 2*SyntheticNoise+1)) - SyntheticNoise
					row[j] = uint8(min(max(b+e, 0), 255))
				}
				buf = appendLeaf(buf[:0], i, row, y[i])
				leaves[i-lo] = samplesTree.Leaf(buf)
			}
		})
		tree.pushChunk(leaves[:hi-lo], scratch)
	}
	ds.commitment = &Commitment{Root: tree.root(), Count: n, Features: features, Classes: classes}
	return ds
}
