package spec_test

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

func smallSpec(t testing.TB) (*spec.Spec, spec.JobID) {
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	return s, id
}

func TestCheckpointRoundTrip(t *testing.T) {
	s, id := smallSpec(t)
	st := s.Init()
	st.Step = 17
	data := spec.MarshalCheckpoint(id, st)
	back, err := s.UnmarshalCheckpoint(id, data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Step != 17 || len(back.Tensors) != len(st.Tensors) {
		t.Fatal("round trip lost the step or tensors")
	}
	for i := range st.Tensors {
		for j, v := range st.Tensors[i].Data {
			if back.Tensors[i].Data[j] != v {
				t.Fatalf("tensor %s element %d differs", st.Tensors[i].Name, j)
			}
		}
	}
	// Corruptions: every one is an error, never a state.
	other := id
	other[0] ^= 1
	if _, err := s.UnmarshalCheckpoint(other, data); !errors.Is(err, spec.ErrCorrupt) {
		t.Errorf("another job's checkpoint: %v", err)
	}
	for _, i := range []int{0, 20, len(data) / 2, len(data) - 1} {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x40
		if _, err := s.UnmarshalCheckpoint(id, bad); !errors.Is(err, spec.ErrCorrupt) {
			t.Errorf("flipped byte %d: %v", i, err)
		}
	}
	if _, err := s.UnmarshalCheckpoint(id, data[:len(data)-1]); !errors.Is(err, spec.ErrCorrupt) {
		t.Errorf("truncated: %v", err)
	}
}

func FuzzUnmarshalCheckpoint(f *testing.F) {
	s, id := smallSpec(f)
	good := spec.MarshalCheckpoint(id, s.Init())
	f.Add(good)
	f.Add(good[:100])
	f.Add([]byte("BELUGACK"))
	f.Add(good[:len(good)-sha256.Size])
	f.Fuzz(func(t *testing.T, data []byte) {
		// As given, and with a valid checksum appended so the layout
		// checks behind the checksum are exercised too.
		sum := sha256.Sum256(data)
		for _, in := range [][]byte{data, append(data[:len(data):len(data)], sum[:]...)} {
			st, err := s.UnmarshalCheckpoint(id, in)
			if err == nil && st.Step > s.Steps {
				t.Fatal("accepted a step beyond the job")
			}
		}
	})
}
