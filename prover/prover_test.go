package prover

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/logger"
	"github.com/consensys/gnark/std/rangecheck"
)

func init() { logger.Disable() }

// tiny: Y = X² with X a 16-bit value (the range check makes gnark add a
// commitment, as in the real circuits).
type tiny struct {
	X frontend.Variable
	Y frontend.Variable `gnark:",public"`
}

func (c *tiny) Define(api frontend.API) error {
	rangecheck.New(api).Check(c.X, 16)
	api.AssertIsEqual(api.Mul(c.X, c.X), c.Y)
	return nil
}

func tinyR1CS(t testing.TB) constraint.ConstraintSystem {
	ccs, err := CompileR1CS(&tiny{})
	if err != nil {
		t.Fatal(err)
	}
	return ccs
}

// ceremony runs a full three-party ceremony for the tiny circuit, sized so
// that the same phase 1 also serves PLONK.
func ceremony(t *testing.T) (*Ceremony, constraint.ConstraintSystem) {
	t.Helper()
	ccs := tinyR1CS(t)
	sccs, err := CompileSCS(&tiny{})
	if err != nil {
		t.Fatal(err)
	}
	n := max(uint64(ccs.GetNbConstraints()), PlonkDomain(sccs))
	c, err := NewCeremony(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if k, err := c.ContributePhase1(); err != nil || k != i {
			t.Fatalf("phase-1 contribution %d: %d, %v", i, k, err)
		}
	}
	if k, err := c.VerifyPhase1(); err != nil || k != 3 {
		t.Fatalf("verify phase 1: %d, %v", k, err)
	}
	if err := c.SealPhase1([]byte("beacon: round 1")); err != nil {
		t.Fatal(err)
	}
	if err := c.StartPhase2(ccs); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if k, err := c.ContributePhase2(ccs); err != nil || k != i {
			t.Fatalf("phase-2 contribution %d: %d, %v", i, k, err)
		}
	}
	return c, ccs
}

func TestCeremonyGroth16AndPlonk(t *testing.T) {
	t.Parallel()
	c, ccs := ceremony(t)
	pk, vk, err := c.Finalize(ccs, []byte("beacon: round 2"))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := ProveGroth16(ccs, pk, &tiny{X: 300, Y: 90000})
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyGroth16(vk, proof, &tiny{Y: 90000}); err != nil {
		t.Fatalf("valid proof: %v", err)
	}
	if err := VerifyGroth16(vk, proof, &tiny{Y: 90001}); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("other public input: %v", err)
	}
	bad := bytes.Clone(proof)
	bad[40] ^= 1
	if err := VerifyGroth16(vk, bad, &tiny{Y: 90000}); err == nil {
		t.Fatal("a tampered proof verified")
	}
	if _, err := ProveGroth16(ccs, pk, &tiny{X: 1 << 16, Y: 1 << 32}); err == nil {
		t.Fatal("a witness outside the range check proved")
	}

	// Keys round-trip through the content-addressed cache.
	cache := Cache{Dir: t.TempDir()}
	pkID, vkID, err := StoreGroth16Keys(cache, pk, vk)
	if err != nil {
		t.Fatal(err)
	}
	_, vk2, err := LoadGroth16Keys(cache, pkID, vkID)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyGroth16(vk2, proof, &tiny{Y: 90000}); err != nil {
		t.Fatalf("cached key: %v", err)
	}

	// PLONK from the same phase 1.
	commons, err := c.Commons()
	if err != nil {
		t.Fatal(err)
	}
	sccs, _ := CompileSCS(&tiny{})
	ppk, pvk, err := SetupPlonk(sccs, commons)
	if err != nil {
		t.Fatal(err)
	}
	pproof, err := ProvePlonk(sccs, ppk, &tiny{X: 7, Y: 49})
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPlonk(pvk, pproof, &tiny{Y: 49}); err != nil {
		t.Fatalf("valid PLONK proof: %v", err)
	}
	if err := VerifyPlonk(pvk, pproof, &tiny{Y: 50}); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("PLONK, other public input: %v", err)
	}
	if err := VerifyPlonk(pvk, pproof[:len(pproof)-1], &tiny{Y: 49}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated PLONK proof: %v", err)
	}
}

// TestCeremonyRejectsBadContributions: a tampered contribution, a copy of
// the previous one, a fork and a contribution for another circuit are all
// refused, and nothing builds on them.
func TestCeremonyRejectsBadContributions(t *testing.T) {
	t.Parallel()
	c, ccs := ceremony(t)
	p1 := func(k int) string { return filepath.Join(c.dir, "phase1", "000"+string(rune('0'+k))+".bin") }
	p2 := func(k int) string { return filepath.Join(c.dir, "phase2", "000"+string(rune('0'+k))+".bin") }

	// Tampered: one byte of a point of contribution 2.
	orig, _ := os.ReadFile(p1(2))
	bad := bytes.Clone(orig)
	bad[len(bad)/2] ^= 0x01
	os.WriteFile(p1(2), bad, 0o644)
	if _, err := c.VerifyPhase1(); !errors.Is(err, ErrCeremony) {
		t.Fatalf("tampered phase-1 contribution: %v", err)
	}
	os.WriteFile(p1(2), orig, 0o644)
	if _, err := c.VerifyPhase1(); err != nil {
		t.Fatalf("restored: %v", err)
	}

	// A copy of contribution 2 posing as contribution 3 (no new randomness).
	orig3, _ := os.ReadFile(p1(3))
	os.WriteFile(p1(3), orig, 0o644)
	if _, err := c.VerifyPhase1(); !errors.Is(err, ErrCeremony) {
		t.Fatalf("replayed phase-1 contribution: %v", err)
	}
	// A fork: contribution 1 again in place of 3.
	one, _ := os.ReadFile(p1(1))
	os.WriteFile(p1(3), one, 0o644)
	if _, err := c.VerifyPhase1(); !errors.Is(err, ErrCeremony) {
		t.Fatalf("forked phase-1 contribution: %v", err)
	}
	os.WriteFile(p1(3), orig3, 0o644)

	// Phase 2: tampering is caught by the next contributor and by Finalize.
	orig2, _ := os.ReadFile(p2(3))
	bad2 := bytes.Clone(orig2)
	bad2[100] ^= 0x01
	os.WriteFile(p2(3), bad2, 0o644)
	if _, err := c.ContributePhase2(ccs); !errors.Is(err, ErrCeremony) {
		t.Fatalf("contributing on a tampered phase-2 contribution: %v", err)
	}
	if _, _, err := c.Finalize(ccs, []byte("b")); !errors.Is(err, ErrCeremony) {
		t.Fatalf("finalizing over a tampered phase-2 contribution: %v", err)
	}
	os.WriteFile(p2(3), orig2, 0o644)

	// Another circuit cannot use this phase 2.
	other, err := CompileR1CS(&tinyOther{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContributePhase2(other); !errors.Is(err, ErrCeremony) {
		t.Fatalf("phase 2 for another circuit: %v", err)
	}
	if _, _, err := c.Finalize(ccs, []byte("b")); err != nil {
		t.Fatalf("restored phase 2: %v", err)
	}
}

type tinyOther struct {
	X frontend.Variable
	Y frontend.Variable `gnark:",public"`
}

func (c *tinyOther) Define(api frontend.API) error {
	rangecheck.New(api).Check(c.X, 8)
	api.AssertIsEqual(api.Mul(c.X, c.X, c.X), c.Y)
	return nil
}

func TestCacheRejectsCorruptEntries(t *testing.T) {
	t.Parallel()
	c := Cache{Dir: t.TempDir()}
	id, err := c.Put([]byte("key bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(id, 100); err != nil || string(got) != "key bytes" {
		t.Fatalf("get: %q, %v", got, err)
	}
	os.WriteFile(filepath.Join(c.Dir, string(id)), []byte("other bytes"), 0o644)
	if _, err := c.Get(id, 100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt entry: %v", err)
	}
	if _, err := c.Get("../../etc/passwd", 100); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad ID: %v", err)
	}
	if _, err := c.Get(IDOf([]byte("absent")), 100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent: %v", err)
	}
}

var fuzzKeys struct {
	once sync.Once
	vk   groth16.VerifyingKey
	err  error
}

func FuzzDecodeGroth16Proof(f *testing.F) {
	ccs := tinyR1CS(f)
	fuzzKeys.once.Do(func() {
		var pk groth16.ProvingKey
		pk, fuzzKeys.vk, fuzzKeys.err = groth16.Setup(ccs) // test keys only
		if fuzzKeys.err == nil {
			var p []byte
			p, fuzzKeys.err = ProveGroth16(ccs, pk, &tiny{X: 5, Y: 25})
			f.Add(p)
		}
	})
	if fuzzKeys.err != nil {
		f.Fatal(fuzzKeys.err)
	}
	f.Add(make([]byte, 196))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		err := VerifyGroth16(fuzzKeys.vk, data, &tiny{Y: 25})
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

func FuzzPhase1Contribution(f *testing.F) {
	const n = 8
	tmpl := phase1Template(n)
	f.Add(append(bytes.Clone(tmpl), make([]byte, 32)...))
	f.Add([]byte{1, 2, 3})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "c.bin")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := readPhase1(path, n, tmpl)
		if err != nil {
			if !errors.Is(err, ErrCeremony) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		// Whatever decodes must not verify as a contribution on the
		// initial object unless it carries a valid proof of knowledge.
		_ = p
	})
}
