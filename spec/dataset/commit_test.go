package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/spec/merkle"
)

func TestSampleLeafFormat(t *testing.T) {
	got := SampleLeaf(0x01020304, []uint8{9, 8, 7}, 5)
	if want := []byte{4, 3, 2, 1, 5, 9, 8, 7}; !bytes.Equal(got, want) {
		t.Fatalf("SampleLeaf = %v, want %v", got, want)
	}
	// Leaf hash by hand: SHA-256(0x00 || len(tag) || tag || leaf data).
	ds := mustSynthetic(t, 1, 1, 3, 2)
	x, y := ds.Sample(0)
	h := sha256.Sum256(slices.Concat([]byte{0, byte(len(SamplesTag))}, []byte(SamplesTag), []byte{0, 0, 0, 0, y}, x))
	if c := Commit(ds); c.Root != merkle.Digest(h) {
		t.Fatal("one-sample root is not the documented leaf hash")
	}
}

func TestCommitGolden(t *testing.T) {
	const want = "698fa7fd6e2092ae8def89a8215a205538f56daf1356c852599f61b28cdcec0e"
	c := Commit(mustSynthetic(t, 42, 100, 16, 4))
	if got := hex.EncodeToString(c.Root[:]); got != want || c.Count != 100 || c.Features != 16 || c.Classes != 4 {
		t.Fatalf("Commit = %s %d×%d/%d, want %s 100×16/4", got, c.Count, c.Features, c.Classes, want)
	}
}

func TestCommitEmpty(t *testing.T) {
	ds, err := New("empty", 3, 2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := Commit(ds); c.Root != merkle.New(SamplesTag).Empty() || c.Count != 0 {
		t.Fatal("empty dataset does not commit to the empty root")
	}
	if c := NewSampleTree(ds).Commitment(); c != Commit(ds) {
		t.Fatal("SampleTree of an empty dataset differs from Commit")
	}
	if _, err := ProveSample(ds, 0); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("proof in empty dataset: %v", err)
	}
}

// The cached-levels tree must agree with spec/merkle for every shape.
func TestSampleTreeMatchesMerkle(t *testing.T) {
	tree := merkle.New(SamplesTag)
	full := mustSynthetic(t, 9, 140, 5, 3)
	for n := 1; n <= 140; n++ {
		ds, err := New("prefix", 5, 3, full.x[:5*n], full.y[:n])
		if err != nil {
			t.Fatal(err)
		}
		leaves := make([]merkle.Digest, n)
		for i := range leaves {
			x, y := ds.Sample(i)
			leaves[i] = tree.Leaf(SampleLeaf(i, x, y))
		}
		st := NewSampleTree(ds)
		if c := Commit(ds); c.Root != tree.Root(leaves) || st.Commitment() != c {
			t.Fatalf("n=%d: roots differ", n)
		}
		for i := range n {
			want, _ := tree.Prove(leaves, i)
			got, err := st.Prove(i)
			if err != nil {
				t.Fatal(err)
			}
			if got.Index != want.Index || got.Count != want.Count || !slices.Equal(got.Siblings, want.Siblings) {
				t.Fatalf("n=%d i=%d: proof differs from merkle.Prove", n, i)
			}
		}
	}
}

// The root must not depend on how many cores hashed it.
func TestCommitIndependentOfCores(t *testing.T) {
	ds := recommit(t, mustSynthetic(t, 4, 5000, 30, 7))
	want := Commit(ds)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, p := range []int{1, 3, 16} {
		runtime.GOMAXPROCS(p)
		if Commit(ds) != want || NewSampleTree(ds).Commitment() != want {
			t.Fatalf("GOMAXPROCS=%d changes the commitment", p)
		}
	}
}

func TestVerifySample(t *testing.T) {
	ds := mustSynthetic(t, 2, 37, 6, 5)
	c := Commit(ds)
	st := NewSampleTree(ds)
	for i := range ds.Len() {
		x, y := ds.Sample(i)
		p, err := ProveSample(ds, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifySample(c, i, x, y, p); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if p2, _ := st.Prove(i); !slices.Equal(p.Siblings, p2.Siblings) {
			t.Fatalf("sample %d: ProveSample and SampleTree.Prove differ", i)
		}

		j := (i + 1) % ds.Len()
		xj, yj := ds.Sample(j)
		pj, _ := st.Prove(j)
		otherTag := merkle.New("beluga/other/v1")
		otherRoot := otherTag.Root([]merkle.Digest{otherTag.Leaf(SampleLeaf(0, x, y)), otherTag.Leaf(nil)})

		for _, bad := range []struct {
			name  string
			c     Commitment
			i     int
			x     []uint8
			y     uint8
			p     merkle.Proof
			proof bool // the failure is the Merkle proof's
		}{
			{"feature byte", c, i, flip(x, i%len(x)), y, p, true},
			{"label", c, i, x, (y + 1) % 5, p, true},
			{"label out of range", c, i, x, 5, p, false},
			{"short features", c, i, x[:len(x)-1], y, p, false},
			{"long features", c, i, append(x, 0), y, p, false},
			{"other sample's data", c, i, xj, yj, p, true},
			{"other sample's proof", c, i, x, y, pj, false},
			{"moved sample", c, j, x, y, pj, true},
			{"index past end", c, ds.Len(), x, y, p, false},
			{"negative index", c, -1, x, y, p, false},
			{"proof index", c, i, x, y, merkle.Proof{Index: uint64(j), Count: p.Count, Siblings: p.Siblings}, false},
			{"proof count", c, i, x, y, merkle.Proof{Index: p.Index, Count: p.Count + 1, Siblings: p.Siblings}, false},
			{"dropped sibling", c, i, x, y, merkle.Proof{Index: p.Index, Count: p.Count, Siblings: p.Siblings[1:]}, true},
			{"extra sibling", c, i, x, y, merkle.Proof{Index: p.Index, Count: p.Count, Siblings: append(slices.Clone(p.Siblings), merkle.Digest{})}, true},
			{"other root", Commitment{Root: otherRoot, Count: c.Count, Features: c.Features, Classes: c.Classes}, i, x, y, p, true},
		} {
			err := VerifySample(bad.c, bad.i, bad.x, bad.y, bad.p)
			if !errors.Is(err, ErrBadSample) {
				t.Fatalf("sample %d, %s: got %v, want ErrBadSample", i, bad.name, err)
			}
			if bad.proof && !errors.Is(err, merkle.ErrBadProof) {
				t.Fatalf("sample %d, %s: got %v, want merkle.ErrBadProof", i, bad.name, err)
			}
		}
	}
}

// Identical samples at different positions must have different leaves.
func TestIndexBindsPosition(t *testing.T) {
	x := []uint8{1, 2, 3}
	ds, err := New("twins", 3, 2, slices.Concat(x, x), []uint8{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	c := Commit(ds)
	p0, _ := ProveSample(ds, 0)
	p1, _ := ProveSample(ds, 1)
	if slices.Equal(p0.Siblings, p1.Siblings) {
		t.Fatal("twin samples have the same leaf hash")
	}
	// The proof of slot 1, relabelled as slot 0, must fail.
	p1.Index = 0
	if err := VerifySample(c, 0, x, 1, p1); err == nil {
		t.Fatal("slot 1's proof verified for slot 0")
	}
}

func fashionSized(b *testing.B) *Dataset {
	b.Helper()
	return mustSynthetic(b, 1, FashionMNISTTrain, FashionMNISTRows*FashionMNISTCols, FashionMNISTClasses)
}

// BenchmarkCommit commits to 60000 samples of 784 features (Fashion-MNIST's
// training set size).
func BenchmarkCommit(b *testing.B) {
	ds := recommit(b, fashionSized(b))
	b.SetBytes(int64(ds.Len() * (5 + ds.Features())))
	for b.Loop() {
		Commit(ds)
	}
}

func BenchmarkNewSampleTree(b *testing.B) {
	ds := fashionSized(b)
	b.SetBytes(int64(ds.Len() * (5 + ds.Features())))
	for b.Loop() {
		NewSampleTree(ds)
	}
}

func BenchmarkSampleTreeProve(b *testing.B) {
	st := NewSampleTree(fashionSized(b))
	i := 0
	for b.Loop() {
		st.Prove(i % FashionMNISTTrain)
		i += 7919
	}
}

func BenchmarkVerifySample(b *testing.B) {
	ds := fashionSized(b)
	st := NewSampleTree(ds)
	p, _ := st.Prove(12345)
	x, y := ds.Sample(12345)
	for b.Loop() {
		if err := VerifySample(st.Commitment(), 12345, x, y, p); err != nil {
			b.Fatal(err)
		}
	}
}

// recommit returns a copy of ds that carries no commitment, so that Commit
// hashes its samples.
func recommit(t testing.TB, ds *Dataset) *Dataset {
	t.Helper()
	cp, err := New(ds.Name, ds.features, ds.classes, slices.Clone(ds.x), slices.Clone(ds.y))
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// The streaming builder must give spec/merkle's root for every leaf count.
func TestRootBuilderMatchesMerkle(t *testing.T) {
	t.Parallel()
	tree := merkle.New(SamplesTag)
	var leaves []merkle.Digest
	var b rootBuilder
	for n := 0; n <= 300; n++ {
		if b.root() != tree.Root(leaves) {
			t.Fatalf("%d leaves: root differs from merkle.Root", n)
		}
		l := tree.Leaf([]byte{byte(n), byte(n >> 8)})
		leaves = append(leaves, l)
		b.push(l)
	}
	// 301 = 256 + 32 + 8 + 4 + 1 leaves: five subtrees, one hash each.
	if len(b.roots) != 5 {
		t.Fatalf("301 leaves held as %d subtrees, want 5", len(b.roots))
	}
}

// The commitment Synthetic computes while generating equals Commit over
// the same samples, across chunk boundaries, and generating holds nothing
// per sample but the samples.
func TestSyntheticCarriesItsCommitment(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 3, commitChunk - 1, commitChunk, commitChunk + 1, 3*commitChunk + 5} {
		ds := mustSynthetic(t, 11, n, 3, 4)
		if ds.commitment == nil {
			t.Fatalf("n=%d: Synthetic did not commit", n)
		}
		if got, want := Commit(ds), Commit(recommit(t, ds)); got != want {
			t.Fatalf("n=%d: generated commitment %x, hashed %x", n, got.Root[:6], want.Root[:6])
		}
	}
	train, test, err := SyntheticSplit(5, 300, 200, 7, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range []*Dataset{train, test} {
		if Commit(ds) != Commit(recommit(t, ds)) || Commit(ds) != NewSampleTree(ds).Commitment() {
			t.Fatalf("%s: generated commitment differs", ds.Name)
		}
	}
}
