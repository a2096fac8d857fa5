package catalog

import (
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

func TestExamplesValidateAndRoundTrip(t *testing.T) {
	for _, name := range []string{ExampleSynthetic, ExampleFashionMNIST} {
		s, err := Example(name)
		if err != nil {
			t.Fatal(err)
		}
		js, err := s.JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := spec.Decode(js)
		if err != nil {
			t.Fatalf("%s: the printed example does not decode: %v", name, err)
		}
		a, _ := s.ID()
		b, _ := back.ID()
		if a != b {
			t.Fatalf("%s: job ID changed through JSON", name)
		}
	}
	if _, err := Example("imagenet"); err == nil {
		t.Fatal("unknown example accepted")
	}
}

func TestSyntheticDataMatches(t *testing.T) {
	s, err := Example(ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != s.Data.Train.Count || test.Len() != s.Data.Test.Count {
		t.Fatal("wrong split sizes")
	}
	s.Data.Train.Root = s.Data.Test.Root // a commitment the bytes do not match
	if _, _, err := LoadData(s, ""); !errors.Is(err, ErrDataMismatch) {
		t.Fatalf("mismatched commitment: %v", err)
	}
}

// TestFashionMNISTRoots recomputes the built-in Fashion-MNIST commitments
// from Debian's files.
func TestFashionMNISTRoots(t *testing.T) {
	train, test, err := dataset.LoadFashionMNIST(dataset.DefaultFashionMNISTDir)
	if err != nil {
		t.Skipf("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	if got := Ref(train); got != FashionMNISTTrain {
		t.Errorf("train: %+v, built in %+v", got, FashionMNISTTrain)
	}
	if got := Ref(test); got != FashionMNISTTest {
		t.Errorf("test: %+v, built in %+v", got, FashionMNISTTest)
	}
}
