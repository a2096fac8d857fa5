package dataset

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"testing"
)

// TestFashionMNIST loads the real data set when it is installed (Debian
// package dataset-fashion-mnist) and skips otherwise.
func TestFashionMNIST(t *testing.T) {
	if _, err := os.Stat(DefaultFashionMNISTDir); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s absent", DefaultFashionMNISTDir)
	}
	train, test, err := LoadFashionMNIST(DefaultFashionMNISTDir)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ds       *Dataset
		n        int
		name     string
		rootHex  string
		firstY   uint8
		perClass int
	}{
		{train, 60000, "fashion-mnist/train", "6046e4295b3ef6d101960b86c6284d46e3da67e2796a7bbcf3998f2adeb7d25e", 9, 6000},
		{test, 10000, "fashion-mnist/t10k", "aea149edca00a54af4a6f8a3c2d21b3e6d694d5e3677589545e34c9f80e13362", 9, 1000},
	} {
		ds := c.ds
		if ds.Len() != c.n || ds.Features() != 784 || ds.Classes() != 10 || ds.Name != c.name {
			t.Fatalf("%s: %d samples × %d features, %d classes", ds.Name, ds.Len(), ds.Features(), ds.Classes())
		}
		if _, y := ds.Sample(0); y != c.firstY {
			t.Errorf("%s: first label %d, want %d", ds.Name, y, c.firstY)
		}
		// Fashion-MNIST is balanced.
		var counts [10]int
		for i := range ds.Len() {
			_, y := ds.Sample(i)
			counts[y]++
		}
		for k, n := range counts {
			if n != c.perClass {
				t.Errorf("%s: class %d has %d samples, want %d", ds.Name, k, n, c.perClass)
			}
		}
		// The commitment of the published files, for SPEC.md.
		if got := Commit(ds).Root; hex.EncodeToString(got[:]) != c.rootHex {
			t.Errorf("%s: root %x, want %s", ds.Name, got, c.rootHex)
		}
	}
	// Pixels are row-major: the first training image (an ankle boot) has a
	// blank top-left corner and ink in its middle rows.
	x, _ := train.Sample(0)
	if x[0] != 0 || x[27] != 0 {
		t.Errorf("first image corners %d %d, want 0", x[0], x[27])
	}
	ink := 0
	for _, v := range x[14*28 : 15*28] {
		if v != 0 {
			ink++
		}
	}
	if ink == 0 {
		t.Error("first image has a blank middle row")
	}
	p, err := ProveSample(test, 9999)
	if err != nil {
		t.Fatal(err)
	}
	x, y := test.Sample(9999)
	if err := VerifySample(Commit(test), 9999, x, y, p); err != nil {
		t.Fatal(err)
	}
}
