package prover

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

// Size limits on outside bytes.
const (
	// MaxCommitments bounds the Pedersen commitments a proof may carry.
	MaxCommitments = 8
	// MaxKeyBytes bounds a verifying key read from the cache.
	MaxKeyBytes = 1 << 20
	// MaxProvingKeyBytes bounds a proving key read from the cache.
	MaxProvingKeyBytes = 1 << 31
)

// groth16Fixed is the compressed size of a Groth16 BN254 proof without its
// commitments: Ar (G1) | Bs (G2) | Krs (G1) | u32 count | PoK (G1).
const groth16Fixed = 32 + 64 + 32 + 4 + 32

// CompileR1CS compiles c for Groth16 over BN254.
func CompileR1CS(c frontend.Circuit) (constraint.ConstraintSystem, error) {
	return frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
}

// CircuitID identifies a compiled constraint system: the SHA-256 of its
// serialization. Keys are bound to it.
func CircuitID(ccs constraint.ConstraintSystem) (ID, error) {
	var buf bytes.Buffer
	if _, err := ccs.WriteTo(&buf); err != nil {
		return "", err
	}
	return IDOf(buf.Bytes()), nil
}

// ProveGroth16 proves the full assignment and returns the compressed proof.
func ProveGroth16(ccs constraint.ConstraintSystem, pk groth16.ProvingKey, assignment frontend.Circuit) ([]byte, error) {
	w, err := frontend.NewWitness(assignment, ecc.BN254.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	proof, err := groth16.Prove(ccs, pk, w)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := proof.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeGroth16Proof decodes an untrusted compressed proof made for vk. The
// commitment count is read and checked against vk before anything is
// allocated, and the length must match exactly.
func DecodeGroth16Proof(vk groth16.VerifyingKey, data []byte) (groth16.Proof, error) {
	want := 0
	if v, ok := vk.(*groth16bn254.VerifyingKey); ok {
		want = len(v.CommitmentKeys)
	} else {
		return nil, fmt.Errorf("%w: not a BN254 verifying key", ErrMalformed)
	}
	if len(data) < groth16Fixed {
		return nil, fmt.Errorf("%w: proof of %d bytes", ErrMalformed, len(data))
	}
	n := binary.BigEndian.Uint32(data[128:132])
	if n > MaxCommitments || int(n) != want || len(data) != groth16Fixed+32*int(n) {
		return nil, fmt.Errorf("%w: proof of %d bytes with %d commitments, the key has %d", ErrMalformed, len(data), n, want)
	}
	proof := groth16.NewProof(ecc.BN254)
	if _, err := proof.ReadFrom(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return proof, nil
}

// VerifyGroth16 checks a proof against vk and the public inputs, which the
// verifier assembles itself (public holds only public fields).
func VerifyGroth16(vk groth16.VerifyingKey, proof []byte, public frontend.Circuit) error {
	p, err := DecodeGroth16Proof(vk, proof)
	if err != nil {
		return err
	}
	w, err := frontend.NewWitness(public, ecc.BN254.ScalarField(), frontend.PublicOnly())
	if err != nil {
		return fmt.Errorf("public inputs: %w", err)
	}
	if err := groth16.Verify(p, vk, w); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	return nil
}

// LoadGroth16Keys reads a proving and a verifying key from the cache by
// ID; both are checked against their IDs before decoding.
func LoadGroth16Keys(c Cache, pkID, vkID ID) (groth16.ProvingKey, groth16.VerifyingKey, error) {
	vk, err := LoadGroth16VK(c, vkID)
	if err != nil {
		return nil, nil, err
	}
	data, err := c.Get(pkID, MaxProvingKeyBytes)
	if err != nil {
		return nil, nil, err
	}
	pk := groth16.NewProvingKey(ecc.BN254)
	if _, err := pk.ReadFrom(bytes.NewReader(data)); err != nil {
		return nil, nil, fmt.Errorf("%w: proving key %s: %v", ErrMalformed, pkID, err)
	}
	return pk, vk, nil
}

// LoadGroth16VK reads a verifying key from the cache by ID.
func LoadGroth16VK(c Cache, id ID) (groth16.VerifyingKey, error) {
	data, err := c.Get(id, MaxKeyBytes)
	if err != nil {
		return nil, err
	}
	vk := groth16.NewVerifyingKey(ecc.BN254)
	if _, err := vk.ReadFrom(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%w: verifying key %s: %v", ErrMalformed, id, err)
	}
	return vk, nil
}

// StoreGroth16Keys writes pk and vk to the cache and returns their IDs.
func StoreGroth16Keys(c Cache, pk groth16.ProvingKey, vk groth16.VerifyingKey) (pkID, vkID ID, err error) {
	var b bytes.Buffer
	if _, err := pk.WriteTo(&b); err != nil {
		return "", "", err
	}
	if pkID, err = c.Put(b.Bytes()); err != nil {
		return "", "", err
	}
	b.Reset()
	if _, err := vk.WriteTo(&b); err != nil {
		return "", "", err
	}
	vkID, err = c.Put(b.Bytes())
	return pkID, vkID, err
}
