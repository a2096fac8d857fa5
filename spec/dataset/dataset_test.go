package dataset

import (
	"errors"
	"testing"
)

func TestNewValidate(t *testing.T) {
	ds, err := New("ok", 2, 3, []uint8{1, 2, 3, 4, 5, 6}, []uint8{0, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 3 || ds.Features() != 2 || ds.Classes() != 3 || ds.Name != "ok" {
		t.Fatalf("got %d×%d/%d %q", ds.Len(), ds.Features(), ds.Classes(), ds.Name)
	}
	x, y := ds.Sample(2)
	if x[0] != 5 || x[1] != 6 || y != 1 || cap(x) != 2 {
		t.Fatalf("Sample(2) = %v (cap %d), %d", x, cap(x), y)
	}
	for _, c := range []struct {
		name     string
		features int
		classes  int
		x, y     []uint8
		want     error
	}{
		{"one class", 1, 1, []uint8{0}, []uint8{0}, ErrBadShape},
		{"257 classes", 1, 257, []uint8{0}, []uint8{0}, ErrBadShape},
		{"no features", 0, 2, nil, []uint8{0}, ErrBadShape},
		{"negative features", -1, 2, nil, nil, ErrBadShape},
		{"short x", 2, 2, []uint8{1, 2, 3}, []uint8{0, 1}, ErrBadShape},
		{"long x", 2, 2, []uint8{1, 2, 3, 4, 5}, []uint8{0, 1}, ErrBadShape},
		{"extra row", 2, 2, []uint8{1, 2, 3, 4, 5, 6}, []uint8{0, 1}, ErrBadShape},
		{"label", 1, 2, []uint8{1, 2}, []uint8{0, 2}, ErrBadLabel},
		{"label 255", 1, 255, []uint8{1}, []uint8{255}, ErrBadLabel},
	} {
		if _, err := New(c.name, c.features, c.classes, c.x, c.y); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := New("label 255 of 256", 1, 256, []uint8{1}, []uint8{255}); err != nil {
		t.Error(err)
	}
	if err := new(Dataset).Validate(); err == nil {
		t.Error("zero Dataset validates")
	}
}
