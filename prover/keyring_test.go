package prover

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/spectest"
)

func TestKeyringIndex(t *testing.T) {
	t.Parallel()
	k := NewKeyring(t.TempDir())
	id := IDOf([]byte("circuit"))
	if _, err := k.Entry(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("entry of an unknown circuit: %v", err)
	}
	if _, err := k.Entry("../../etc/passwd"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a path as circuit ID: %v", err)
	}
	if err := k.Register(KeyEntry{CircuitID: id, Groth16VK: "nope"}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("registering an invalid key ID: %v", err)
	}
	e := KeyEntry{CircuitID: id, Groth16VK: IDOf([]byte("vk"))}
	if err := k.Register(e); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Entry(id); err != nil || got != e {
		t.Fatalf("entry %+v, %v", got, err)
	}
	// An index file naming another circuit is refused.
	other := IDOf([]byte("other"))
	data, _ := os.ReadFile(k.indexPath(id))
	if err := os.WriteFile(k.indexPath(other), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Entry(other); !errors.Is(err, ErrMalformed) {
		t.Fatalf("an index entry of another circuit: %v", err)
	}
	// A verifier's keyring (no proving key) cannot prove; a missing key
	// file is reported, not a panic.
	s, _ := catalog.Example("synthetic")
	c, err := k.Circuit(s, 2)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := k.Circuit(s, 2); again != c {
		t.Fatal("the circuit was compiled twice")
	}
	if err := k.Register(KeyEntry{CircuitID: c.ID, Groth16VK: IDOf([]byte("vk"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ProvingKey(c); !errors.Is(err, ErrNotFound) {
		t.Fatalf("proving key on a verifier's keyring: %v", err)
	}
	if _, err := k.VerifyingKey(c); !errors.Is(err, ErrNotFound) {
		t.Fatalf("verifying key missing from the cache: %v", err)
	}
}

// TestKeyringDevSetupProvesAndVerifies: keys from DevSetup prove a tile of
// a confidential run and verify it through a verifier's keyring holding
// only the verifying keys. Slow (BELUGA_SLOW=1): three
// setups of ~15 s each.
func TestKeyringDevSetupProvesAndVerifies(t *testing.T) {
	t.Parallel()
	spectest.Slow(t)
	s, dir := confidentialRun(t)
	train, _, _ := catalog.LoadData(s, "")
	z, err := CommitRun(context.Background(), s, train, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeyring(t.TempDir())
	n, err := DevSetup(k, s)
	if err != nil || n != 3 {
		t.Fatalf("dev setup: %d circuits, %v", n, err)
	}
	if n, err := DevSetup(k, s); err != nil || n != 0 {
		t.Fatalf("second dev setup set up %d circuits (%v), want 0", n, err)
	}
	c := zkchallenge.Challenge{Step: 1, Layer: 1, Row: 2, Col: 3}
	proof, err := ProveTile(context.Background(), k, s, train, dir, nil, c)
	if err != nil {
		t.Fatal(err)
	}
	// The verifier's keyring: the index without proving keys.
	vk := NewKeyring(t.TempDir())
	for j := range 3 {
		tc, _ := k.Circuit(s, j)
		e, _ := k.Entry(tc.ID)
		data, err := k.Cache.Get(e.Groth16VK, MaxKeyBytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vk.Cache.Put(data); err != nil {
			t.Fatal(err)
		}
		e.Groth16PK = ""
		if err := vk.Register(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := VerifyTile(vk, s, z, c, proof); err != nil {
		t.Fatalf("a valid proof: %v", err)
	}
	for _, other := range []zkchallenge.Challenge{{Step: 2, Layer: 1, Row: 2, Col: 3}, {Step: 1, Layer: 1, Row: 2, Col: 4}, {Step: 1, Layer: 0, Row: 2, Col: 3}} {
		if err := VerifyTile(vk, s, z, other, proof); err == nil {
			t.Fatalf("the proof of %+v verified as %+v", c, other)
		}
	}
	bad := append([]byte(nil), proof...)
	bad[len(bad)/2] ^= 1
	if err := VerifyTile(vk, s, z, c, bad); err == nil {
		t.Fatal("a tampered proof verified")
	}
	if _, err := os.Stat(filepath.Join(k.Cache.Dir, "index")); err != nil {
		t.Fatal(err)
	}
}
