package merkle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
)

func leaves(t Tree, n int) []Digest {
	ls := make([]Digest, n)
	for i := range ls {
		ls[i] = t.Leaf([]byte(fmt.Sprint("leaf", i)))
	}
	return ls
}

func TestShapeMatchesDefinition(t *testing.T) {
	tr := New("test")
	ls := leaves(tr, 3)
	want := tr.Node(tr.Node(ls[0], ls[1]), ls[2])
	if got := tr.Root(ls); got != want {
		t.Fatal("3-leaf tree is not node(node(l0,l1),l2)")
	}
	// leaf(d) by hand.
	h := sha256.Sum256(append([]byte{0, 4, 't', 'e', 's', 't'}, "leaf0"...))
	if Digest(h) != ls[0] {
		t.Fatal("leaf encoding differs from the documented one")
	}
}

func TestTagsSeparate(t *testing.T) {
	a, b := New("a"), New("b")
	if a.Leaf(nil) == b.Leaf(nil) || a.Empty() == b.Empty() || a.Node(Digest{}, Digest{}) == b.Node(Digest{}, Digest{}) {
		t.Fatal("different tags hash alike")
	}
}

func TestProveVerify(t *testing.T) {
	tr := New("test")
	for n := 1; n <= 33; n++ {
		ls := leaves(tr, n)
		root := tr.Root(ls)
		for i := range ls {
			p, err := tr.Prove(ls, i)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Verify(root, ls[i], p); err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
			// Any change must fail.
			bad := p
			bad.Index = uint64((i + 1) % n)
			if n > 1 && tr.Verify(root, ls[i], bad) == nil {
				t.Fatalf("n=%d i=%d: wrong index verified", n, i)
			}
			if err := tr.Verify(root, ls[(i+1)%n], p); n > 1 && !errors.Is(err, ErrBadProof) {
				t.Fatalf("n=%d i=%d: wrong leaf verified", n, i)
			}
			if err := New("other").Verify(root, ls[i], p); n > 1 && err == nil {
				t.Fatalf("n=%d: proof verified under another tag", n)
			}
		}
	}
}

func FuzzVerify(f *testing.F) {
	tr := New("fuzz")
	ls := leaves(tr, 5)
	root := tr.Root(ls)
	f.Add(uint64(2), uint64(5), []byte{})
	f.Fuzz(func(t *testing.T, idx, count uint64, sib []byte) {
		p := Proof{Index: idx, Count: count}
		for len(sib) >= 32 && len(p.Siblings) < 64 {
			p.Siblings = append(p.Siblings, Digest(sib[:32]))
			sib = sib[32:]
		}
		_ = tr.Verify(root, ls[0], p) // must not panic or hang
	})
}
