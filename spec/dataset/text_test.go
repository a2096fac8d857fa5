package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/prng"
)

// modCorpus returns the n-byte corpus whose byte i is i mod 251 (a prime,
// so no chunk repeats another).
func modCorpus(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func mustText(t testing.TB, b []byte) *Text {
	t.Helper()
	tx, err := NewText(b)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestTextRootByHand pins the commitment's bytes: a one-chunk corpus's
// root is SHA-256(0x00 || len(tag) || tag || le32(0) || bytes), and the
// 10,000-byte vector of the spec is node(node(L0, L1), L2).
func TestTextRootByHand(t *testing.T) {
	t.Parallel()
	one := []byte("hello, fortunes")
	h := sha256.Sum256(slices.Concat([]byte{0, byte(len(TextTag))}, []byte(TextTag), []byte{0, 0, 0, 0}, one))
	if r := mustText(t, one).Root(); r != h {
		t.Fatalf("one-chunk root %x, want the documented leaf hash %x", r, h)
	}

	c := modCorpus(10000)
	tree := merkle.New(TextTag)
	leaf := func(i int) merkle.Digest {
		return tree.Leaf(append(binary.LittleEndian.AppendUint32(nil, uint32(i)), c[i*4096:min((i+1)*4096, len(c))]...))
	}
	want := tree.Node(tree.Node(leaf(0), leaf(1)), leaf(2))
	tx := mustText(t, c)
	if tx.Root() != want {
		t.Fatalf("10,000-byte root %x, want %x", tx.Root(), want)
	}
	const golden = "4fc202a4858d268fd071cfb35eac85e2e922fc71541a0aa61b3ee19c8c397f25"
	if r := tx.Root(); hex.EncodeToString(r[:]) != golden || tx.Len() != 10000 {
		t.Fatalf("10,000-byte vector: root %x, %d bytes; want %s (SPEC test vector)", r, tx.Len(), golden)
	}
	if !bytes.Equal(TextLeaf(2, []byte{7, 8}), []byte{2, 0, 0, 0, 7, 8}) {
		t.Fatal("TextLeaf is not le32(i) || chunk")
	}
}

// TestTextRootMatchesMerkle: for sizes around chunk boundaries (a short
// last chunk, an exact multiple of 4096, one byte over), the root is
// spec/merkle's over the chunk leaves.
func TestTextRootMatchesMerkle(t *testing.T) {
	t.Parallel()
	tree := merkle.New(TextTag)
	for _, n := range []int{1, 2, 4095, 4096, 4097, 8191, 8192, 8193, 3*4096 + 1, 5 * 4096, 7*4096 + 100} {
		c := modCorpus(n)
		var leaves []merkle.Digest
		for i := 0; i*4096 < n; i++ {
			leaves = append(leaves, tree.Leaf(TextLeaf(i, c[i*4096:min((i+1)*4096, n)])))
		}
		if len(leaves) != TextChunks(n) {
			t.Fatalf("n=%d: TextChunks %d, want %d", n, TextChunks(n), len(leaves))
		}
		if r := mustText(t, c).Root(); r != tree.Root(leaves) {
			t.Fatalf("n=%d: root differs from merkle.Root over the chunk leaves", n)
		}
	}
}

func TestNewTextRefuses(t *testing.T) {
	t.Parallel()
	for _, b := range [][]byte{nil, {}} {
		if tx, err := NewText(b); !errors.Is(err, ErrBadArgument) || tx != nil {
			t.Fatalf("NewText(%d bytes) = %v, %v; want ErrBadArgument", len(b), tx, err)
		}
	}
	// NewText checks the size with checkTextSize before it reads a byte;
	// the limit itself is tested there, without a 256 MiB corpus.
	if err := checkTextSize(MaxTextBytes + 1); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("corpus of 2^28+1 bytes: %v, want ErrBadArgument", err)
	}
	if err := checkTextSize(MaxTextBytes); err != nil {
		t.Fatalf("corpus of 2^28 bytes: %v", err)
	}
}

// TestTextIsImmutable: NewText copies its input and Bytes returns copies,
// so no caller can change the bytes behind the root.
func TestTextIsImmutable(t *testing.T) {
	t.Parallel()
	c := modCorpus(5000)
	tx := mustText(t, c)
	root := tx.Root()
	c[0], c[4999] = 99, 99
	got, err := tx.Bytes(0, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, modCorpus(5000)) {
		t.Fatal("Text sees a change to NewText's input")
	}
	got[10] = 200
	if again, _ := tx.Bytes(10, 1); again[0] != 10 || tx.Root() != root || mustText(t, modCorpus(5000)).Root() != root {
		t.Fatal("Text sees a change to a slice Bytes returned")
	}
}

func TestTextBytes(t *testing.T) {
	t.Parallel()
	tx := mustText(t, modCorpus(10000))
	for _, c := range []struct{ start, n int }{{0, 1}, {0, 10000}, {4095, 2}, {9999, 1}, {8192, 1808}} {
		got, err := tx.Bytes(c.start, c.n)
		if err != nil || !bytes.Equal(got, modCorpus(10000)[c.start:c.start+c.n]) {
			t.Fatalf("Bytes(%d, %d) = %v, %v", c.start, c.n, got, err)
		}
	}
	for _, c := range []struct{ start, n int }{{-1, 2}, {0, 0}, {0, -1}, {9999, 2}, {10000, 1}, {0, 10001}, {1, 1<<63 - 1}} {
		if got, err := tx.Bytes(c.start, c.n); !errors.Is(err, ErrBadArgument) || got != nil {
			t.Fatalf("Bytes(%d, %d) = %v, %v; want ErrBadArgument", c.start, c.n, got, err)
		}
	}
}

func TestNewTextSplit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n, val, ctx int
		ok          bool
	}{
		{10000, 1000, 128, true},
		{258, 129, 128, true},      // one training window, one validation window
		{257, 129, 128, false},     // 128 training bytes: no window
		{10000, 128, 128, false},   // 128 validation bytes: no window
		{10000, 0, 128, false},     // no validation bytes
		{10000, 10000, 128, false}, // no training bytes
		{10000, 20000, 128, false},
		{10000, -5, 128, false},
		{10000, 1000, 0, false},
		{0, 0, 1, false},
		{MaxTextBytes + 1, 1000, 128, false},
		{10000, 1000, 1<<63 - 1, false},
	} {
		s, err := NewTextSplit(c.n, c.val, c.ctx)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrBadArgument)) {
			t.Fatalf("NewTextSplit(%d, %d, %d) = %v, %v; want ok=%v", c.n, c.val, c.ctx, s, err, c.ok)
		}
		if c.ok && (s.Train != c.n-c.val || s.Val != c.val) {
			t.Fatalf("NewTextSplit(%d, %d, %d) = %+v", c.n, c.val, c.ctx, s)
		}
	}
}

// TestTrainWindowsVector: the spec's vector, and the formula written out
// with spec/prng.
func TestTrainWindowsVector(t *testing.T) {
	t.Parallel()
	got := TrainWindows(7, 3, 4, 128, 9000, nil)
	if want := []int64{3364, 3562, 1772, 5894}; !slices.Equal(got, want) {
		t.Fatalf("TrainWindows(seed 7, step 3, B 4, T 128, n_train 9000) = %v, want %v (SPEC test vector)", got, want)
	}
	s := prng.Derive(7, "batch.window", 3, 0)
	for b, start := range TrainWindows(7, 3, 64, 128, 9000, nil) {
		if want := prng.Below(s.At(uint64(b)), 9000-128); uint64(start) != want {
			t.Fatalf("window %d starts at %d, want %d", b, start, want)
		}
	}
}

// TestTrainWindowsDeterministic: the same arguments give the same windows
// whatever dst held; dst's storage is reused; a different step or seed
// gives different windows.
func TestTrainWindowsDeterministic(t *testing.T) {
	t.Parallel()
	a := TrainWindows(11, 5, 32, 64, 5000, nil)
	dst := make([]int64, 100)
	for i := range dst {
		dst[i] = -1
	}
	b := TrainWindows(11, 5, 32, 64, 5000, dst)
	if !slices.Equal(a, b) || len(b) != 32 || &b[0] != &dst[0] {
		t.Fatalf("second call %v (len %d), want %v in dst's storage", b, len(b), a)
	}
	if slices.Equal(a, TrainWindows(11, 6, 32, 64, 5000, nil)) || slices.Equal(a, TrainWindows(12, 5, 32, 64, 5000, nil)) {
		t.Fatal("windows do not depend on the step and the seed")
	}
	if w := TrainWindows(11, 5, 0, 64, 5000, dst); len(w) != 0 {
		t.Fatalf("batch 0 gave %v", w)
	}
}

// TestTrainWindowsInsideTrain: every window [start, start+T+1) lies inside
// [0, n_train), including when n_train = T+1 (one possible window) and the
// extreme draws reach both ends.
func TestTrainWindowsInsideTrain(t *testing.T) {
	t.Parallel()
	var dst []int64
	for _, c := range []struct{ ctx, nTrain int }{{1, 2}, {128, 129}, {128, 130}, {16, 100}, {256, 9000}, {1024, MaxTextBytes}} {
		lo, hi := int64(1<<62), int64(-1)
		for step := int64(0); step < 40; step++ {
			dst = TrainWindows(uint64(step)*31+1, step, 50, c.ctx, c.nTrain, dst)
			for _, s := range dst {
				if s < 0 || s+int64(c.ctx)+1 > int64(c.nTrain) {
					t.Fatalf("T=%d n_train=%d: window at %d leaves the training bytes", c.ctx, c.nTrain, s)
				}
				lo, hi = min(lo, s), max(hi, s)
			}
		}
		if c.nTrain-c.ctx <= 2 && (lo != 0 || hi != int64(c.nTrain-c.ctx-1)) {
			t.Fatalf("T=%d n_train=%d: starts span [%d, %d], want every possible start", c.ctx, c.nTrain, lo, hi)
		}
	}
}

func TestTrainWindowsPanicsOnBadArguments(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		step               int64
		batch, ctx, nTrain int
	}{{-1, 1, 8, 100}, {0, -1, 8, 100}, {0, 1, 0, 100}, {0, 1, 8, 8}, {0, 1, 8, 0}, {0, 1, 1<<63 - 1, 100}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("TrainWindows(step %d, batch %d, T %d, n_train %d) did not refuse", c.step, c.batch, c.ctx, c.nTrain)
				}
			}()
			TrainWindows(1, c.step, c.batch, c.ctx, c.nTrain, nil)
		}()
	}
}

// TestValWindows: starts n_train + k·T for k < K = min(⌊(val−1)/T⌋, max),
// each window inside the validation bytes.
func TestValWindows(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		nTrain, val, ctx, max int
		want                  []int64
	}{
		{9000, 1000, 128, 100, []int64{9000, 9128, 9256, 9384, 9512, 9640, 9768}},
		{9000, 1000, 128, 3, []int64{9000, 9128, 9256}},
		{9000, 129, 128, 100, []int64{9000}},       // val = T+1: one window
		{9000, 128, 128, 100, nil},                 // val = T: none
		{9000, 257, 128, 100, []int64{9000, 9128}}, // windows share their boundary byte
		{9000, 1000, 128, 0, nil},
		{9000, 1000, 128, -1, nil},
		{9000, 0, 128, 5, nil},
		{5, 4, 1, 10, []int64{5, 6, 7}},
	} {
		got := ValWindows(c.nTrain, c.val, c.ctx, c.max)
		if !slices.Equal(got, c.want) {
			t.Fatalf("ValWindows(%d, %d, %d, %d) = %v, want %v", c.nTrain, c.val, c.ctx, c.max, got, c.want)
		}
		for _, s := range got {
			if s < int64(c.nTrain) || s+int64(c.ctx)+1 > int64(c.nTrain+c.val) {
				t.Fatalf("window at %d leaves the validation bytes [%d, %d)", s, c.nTrain, c.nTrain+c.val)
			}
		}
	}
}

// windowCases are windows of a corpus of n bytes: in one chunk, across a
// chunk boundary, starting on one, in and into the short last chunk, the
// last byte, the whole corpus.
func windowCases(n int) [][2]int {
	cs := [][2]int{{0, 1}, {0, min(n, 129)}, {n - 1, 1}, {0, n}}
	if n > 4096+200 {
		cs = append(cs, [2]int{4000, 129}, [2]int{4096, 129}, [2]int{4095, 2}, [2]int{100, 4096 + 50})
	}
	if last := (TextChunks(n) - 1) * 4096; last > 0 {
		cs = append(cs, [2]int{last - 10, n - last + 10}, [2]int{last, n - last})
	}
	return cs
}

func TestWindowProofVerifies(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 4096, 8192, 10000, 3*4096 + 5} {
		c := modCorpus(n)
		tx := mustText(t, c)
		for _, w := range windowCases(n) {
			start, length := w[0], w[1]
			p, err := tx.WindowProof(start, length)
			if err != nil {
				t.Fatalf("n=%d: WindowProof(%d, %d): %v", n, start, length, err)
			}
			if want := (start+length-1)/4096 - start/4096 + 1; len(p.Chunks) != want {
				t.Fatalf("n=%d [%d,+%d): %d chunks, want %d", n, start, length, len(p.Chunks), want)
			}
			if err := VerifyWindow(tx.Root(), n, start, c[start:start+length], p); err != nil {
				t.Fatalf("n=%d: window [%d, +%d) refused: %v", n, start, length, err)
			}
		}
	}
	tx := mustText(t, modCorpus(100))
	for _, w := range [][2]int{{-1, 2}, {0, 0}, {99, 2}, {100, 1}} {
		if _, err := tx.WindowProof(w[0], w[1]); !errors.Is(err, ErrBadArgument) {
			t.Fatalf("WindowProof(%d, %d): %v, want ErrBadArgument", w[0], w[1], err)
		}
	}
}

// TestVerifyWindowRefusesTampering: a changed byte (in the window or
// elsewhere in a chunk), sibling, index, chunk list, start, length, n or
// root is refused, and the error wraps ErrBadWindow.
func TestVerifyWindowRefusesTampering(t *testing.T) {
	t.Parallel()
	const n = 3*4096 + 5
	c := modCorpus(n)
	tx := mustText(t, c)
	other := mustText(t, modCorpus(n+1)).Root()
	start, length := 4000, 200 // chunks 0 and 1
	data := c[start : start+length]
	good, err := tx.WindowProof(start, length)
	if err != nil {
		t.Fatal(err)
	}
	clone := func() TextWindowProof {
		p := TextWindowProof{}
		for k := range good.Chunks {
			p.Chunks = append(p.Chunks, bytes.Clone(good.Chunks[k]))
			q := good.Proofs[k]
			q.Siblings = slices.Clone(q.Siblings)
			p.Proofs = append(p.Proofs, q)
		}
		return p
	}
	tail, err := tx.WindowProof(3*4096, 5)
	if err != nil {
		t.Fatal(err)
	}
	type try struct {
		root     [32]byte
		n, start int
		data     []byte
		p        TextWindowProof
	}
	base := func() try { return try{tx.Root(), n, start, bytes.Clone(data), clone()} }
	cases := map[string]func(*try){
		"data byte":            func(x *try) { x.data[150] ^= 1 },
		"chunk byte in window": func(x *try) { x.p.Chunks[1][10] ^= 1 },
		"chunk byte outside":   func(x *try) { x.p.Chunks[0][0] ^= 1 },
		"sibling":              func(x *try) { x.p.Proofs[0].Siblings[0][0] ^= 1 },
		"sibling dropped":      func(x *try) { x.p.Proofs[1].Siblings = x.p.Proofs[1].Siblings[1:] },
		"sibling added":        func(x *try) { x.p.Proofs[1].Siblings = append(x.p.Proofs[1].Siblings, merkle.Digest{}) },
		"index":                func(x *try) { x.p.Proofs[1].Index = 2 },
		"count":                func(x *try) { x.p.Proofs[0].Count = 5 },
		"chunks swapped":       func(x *try) { x.p.Chunks[0], x.p.Chunks[1] = x.p.Chunks[1], x.p.Chunks[0] },
		"chunk missing":        func(x *try) { x.p.Chunks, x.p.Proofs = x.p.Chunks[:1], x.p.Proofs[:1] },
		"proof missing":        func(x *try) { x.p.Proofs = x.p.Proofs[:1] },
		"chunk extra": func(x *try) {
			x.p.Chunks, x.p.Proofs = append(x.p.Chunks, tail.Chunks[0]), append(x.p.Proofs, tail.Proofs[0])
		},
		"chunk truncated":        func(x *try) { x.p.Chunks[0] = x.p.Chunks[0][:4095] },
		"start +1":               func(x *try) { x.start++ },
		"start -1":               func(x *try) { x.start-- },
		"start in chunk 1":       func(x *try) { x.start = 4096 },
		"length to one chunk":    func(x *try) { x.data = x.data[:96] },
		"length to three chunks": func(x *try) { x.data = c[start : 2*4096+1] },
		"length +1, wrong byte":  func(x *try) { x.data = append(x.data, c[start+length]^1) },
		"empty":                  func(x *try) { x.data = nil },
		"n":                      func(x *try) { x.n = n + 4096 },
		"n zero":                 func(x *try) { x.n = 0 },
		"n past window":          func(x *try) { x.n = start + length - 1 },
		"root":                   func(x *try) { x.root = other },
		"negative start":         func(x *try) { x.start = -1 },
		"no proof":               func(x *try) { x.p = TextWindowProof{} },
		"nil chunk":              func(x *try) { x.p.Chunks[0] = nil },
	}
	if x := base(); VerifyWindow(x.root, x.n, x.start, x.data, x.p) != nil {
		t.Fatal("untampered window refused")
	}
	for name, tamper := range cases {
		x := base()
		tamper(&x)
		if err := VerifyWindow(x.root, x.n, x.start, x.data, x.p); !errors.Is(err, ErrBadWindow) {
			t.Errorf("%s: VerifyWindow = %v, want ErrBadWindow", name, err)
		}
	}
	// The proof covers any window of true bytes inside its chunks.
	if err := VerifyWindow(tx.Root(), n, start+1, c[start+1:start+length+1], good); err != nil {
		t.Fatalf("shifted window inside the same chunks: %v", err)
	}
	// The last chunk's size is fixed by n: a proof of the 5-byte tail does
	// not verify with a tail padded to a full chunk.
	padded := append(bytes.Clone(tail.Chunks[0]), make([]byte, 4091)...)
	p := TextWindowProof{Chunks: [][]byte{padded}, Proofs: tail.Proofs}
	if err := VerifyWindow(tx.Root(), 4*4096, 3*4096, c[3*4096:], p); !errors.Is(err, ErrBadWindow) {
		t.Fatalf("padded tail: %v", err)
	}
	if err := VerifyWindow(tx.Root(), n, 3*4096, c[3*4096:], tail); err != nil {
		t.Fatalf("tail: %v", err)
	}
}

// TestTextProofSizes bounds a proof's cost: a window of T+1 ≤ 4097 bytes
// needs at most two chunks.
func TestTextProofSizes(t *testing.T) {
	t.Parallel()
	tx := mustText(t, modCorpus(5*4096))
	for start := 0; start < 5*4096-4097; start += 511 {
		p, err := tx.WindowProof(start, 4097)
		if err != nil || len(p.Chunks) > 2 {
			t.Fatalf("window at %d: %d chunks, %v", start, len(p.Chunks), err)
		}
	}
}

func ExampleTrainWindows() {
	split, err := NewTextSplit(10000, 1000, 128)
	if err != nil {
		panic(err)
	}
	fmt.Println(split, TrainWindows(7, 3, 4, 128, split.Train, nil), len(ValWindows(split.Train, split.Val, 128, 100)))
	// Output: {9000 1000} [3364 3562 1772 5894] 7
}
