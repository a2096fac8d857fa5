package dataset

import "fmt"

// Bounds on every Dataset.
const (
	// MaxSamples bounds the sample count; it keeps indices within the
	// 32-bit field of a commitment leaf.
	MaxSamples = 1 << 30
	// MinClasses and MaxClasses bound the class count; labels are uint8.
	MinClasses = 2
	MaxClasses = 256
)

// Dataset is N samples of D uint8 features and one uint8 label each.
// Features are stored row-major in one buffer: sample i is x[i·D : (i+1)·D].
// A Dataset is immutable once built and safe for concurrent readers.
type Dataset struct {
	// Name says where the data came from; it is not committed to.
	Name string

	features int
	classes  int
	x        []uint8 // len N·D
	y        []uint8 // len N
	// commitment is Commit's result when it was computed as the samples
	// were made (Synthetic), nil otherwise. Only this package sets it, at
	// construction; the samples never change afterwards.
	commitment *Commitment
}

// New returns the dataset with the given features (row-major, len(y)·features
// bytes) and labels. It takes ownership of x and y: the caller must not
// modify them afterwards.
func New(name string, features, classes int, x, y []uint8) (*Dataset, error) {
	ds := &Dataset{Name: name, features: features, classes: classes, x: x, y: y}
	if err := ds.Validate(); err != nil {
		return nil, err
	}
	return ds, nil
}

// Validate checks that the class count is in [MinClasses, MaxClasses], there
// is at least one feature, there are at most MaxSamples samples, the feature
// buffer holds exactly Len()·Features() bytes and every label is below
// Classes(). Datasets returned by this package always pass; a zero Dataset
// does not.
func (ds *Dataset) Validate() error {
	switch {
	case ds.classes < MinClasses || ds.classes > MaxClasses:
		return fmt.Errorf("%w: %d classes, want %d..%d", ErrBadShape, ds.classes, MinClasses, MaxClasses)
	case ds.features < 1:
		return fmt.Errorf("%w: %d features, want at least 1", ErrBadShape, ds.features)
	case len(ds.y) > MaxSamples:
		return fmt.Errorf("%w: %d samples, want at most %d", ErrBadShape, len(ds.y), MaxSamples)
	case len(ds.x)%ds.features != 0 || len(ds.x)/ds.features != len(ds.y):
		return fmt.Errorf("%w: %d feature bytes for %d samples of %d features", ErrBadShape, len(ds.x), len(ds.y), ds.features)
	}
	for i, l := range ds.y {
		if int(l) >= ds.classes {
			return fmt.Errorf("%w: sample %d has label %d, want < %d", ErrBadLabel, i, l, ds.classes)
		}
	}
	return nil
}

// Len returns the number of samples N.
func (ds *Dataset) Len() int { return len(ds.y) }

// Features returns the number of features per sample D.
func (ds *Dataset) Features() int { return ds.features }

// Classes returns the number of classes C; every label is below it.
func (ds *Dataset) Classes() int { return ds.classes }

// Sample returns the features and label of sample i, 0 ≤ i < Len(); it
// panics otherwise, as slice indexing does. The features alias the dataset
// and must not be modified; their capacity is clipped so append copies.
func (ds *Dataset) Sample(i int) ([]uint8, uint8) {
	lo, hi := i*ds.features, (i+1)*ds.features
	return ds.x[lo:hi:hi], ds.y[i]
}
