package prover

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	kzg "github.com/consensys/gnark-crypto/ecc/bn254/kzg"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	"github.com/consensys/gnark/backend/plonk"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/scs"
)

// MaxPlonkProofBytes bounds a PLONK proof read from outside.
const MaxPlonkProofBytes = 1 << 12

// CompileSCS compiles c for PLONK over BN254.
func CompileSCS(c frontend.Circuit) (constraint.ConstraintSystem, error) {
	return frontend.Compile(ecc.BN254.ScalarField(), scs.NewBuilder, c)
}

// PlonkDomain is the SRS size a PLONK circuit needs: the next power of two
// above its constraints and public inputs.
func PlonkDomain(ccs constraint.ConstraintSystem) uint64 {
	return ecc.NextPowerOfTwo(uint64(ccs.GetNbConstraints() + ccs.GetNbPublicVariables()))
}

// KZGFromCommons derives PLONK's KZG SRS, canonical and Lagrange, for a
// circuit of Lagrange size l from a sealed phase-1 SRS: the KZG SRS is the
// powers [τ^i]₁ and [1]₂, [τ]₂, which phase 1 already holds (2N−1 powers
// in G1), so no second trusted setup is needed. It needs l + 3 ≤ 2N − 1.
func KZGFromCommons(s *mpcsetup.SrsCommons, l uint64) (canonical, lagrange *kzg.SRS, err error) {
	if l < 2 || l&(l-1) != 0 || uint64(len(s.G1.Tau)) < l+3 || len(s.G2.Tau) < 2 {
		return nil, nil, fmt.Errorf("%w: a PLONK domain of %d needs %d powers of τ, the ceremony has %d", ErrCeremony, l, l+3, len(s.G1.Tau))
	}
	canonical = &kzg.SRS{}
	canonical.Pk.G1 = append([]curve.G1Affine(nil), s.G1.Tau[:l+3]...)
	canonical.Vk.G1 = s.G1.Tau[0]
	canonical.Vk.G2 = [2]curve.G2Affine{s.G2.Tau[0], s.G2.Tau[1]}
	canonical.Vk.Lines[0] = curve.PrecomputeLines(canonical.Vk.G2[0])
	canonical.Vk.Lines[1] = curve.PrecomputeLines(canonical.Vk.G2[1])
	lg, err := kzg.ToLagrangeG1(canonical.Pk.G1[:l])
	if err != nil {
		return nil, nil, err
	}
	lagrange = &kzg.SRS{Vk: canonical.Vk}
	lagrange.Pk.G1 = lg
	return canonical, lagrange, nil
}

// SetupPlonk derives PLONK keys for ccs from a sealed phase-1 SRS.
func SetupPlonk(ccs constraint.ConstraintSystem, s *mpcsetup.SrsCommons) (plonk.ProvingKey, plonk.VerifyingKey, error) {
	canonical, lagrange, err := KZGFromCommons(s, PlonkDomain(ccs))
	if err != nil {
		return nil, nil, err
	}
	return plonk.Setup(ccs, canonical, lagrange)
}

// ProvePlonk proves the full assignment and returns the proof bytes.
func ProvePlonk(ccs constraint.ConstraintSystem, pk plonk.ProvingKey, assignment frontend.Circuit) ([]byte, error) {
	w, err := frontend.NewWitness(assignment, ecc.BN254.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	proof, err := plonk.Prove(ccs, pk, w)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := proof.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// VerifyPlonk checks an untrusted PLONK proof against vk and the public
// inputs the verifier assembled.
func VerifyPlonk(vk plonk.VerifyingKey, proof []byte, public frontend.Circuit) error {
	if err := checkPlonkLayout(vk, proof); err != nil {
		return err
	}
	p := plonk.NewProof(ecc.BN254)
	if _, err := p.ReadFrom(bytes.NewReader(proof)); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	w, err := frontend.NewWitness(public, ecc.BN254.ScalarField(), frontend.PublicOnly())
	if err != nil {
		return fmt.Errorf("public inputs: %w", err)
	}
	if err := plonk.Verify(p, vk, w); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	return nil
}

// checkPlonkLayout checks the counts inside an untrusted compressed PLONK
// proof before the decoder allocates by them: 8 G1 points, the batched
// opening's claimed values (u32 m, m scalars), the shifted opening (G1 and
// a scalar), the BSB22 commitments (u32 k, k G1 points) — k must be the
// key's commitment count and the length must add up exactly.
func checkPlonkLayout(vk plonk.VerifyingKey, proof []byte) error {
	v, ok := vk.(*plonkbn254.VerifyingKey)
	if !ok {
		return fmt.Errorf("%w: not a BN254 PLONK key", ErrMalformed)
	}
	bad := fmt.Errorf("%w: PLONK proof of %d bytes does not have the expected layout", ErrMalformed, len(proof))
	if len(proof) > MaxPlonkProofBytes || len(proof) < 260 {
		return bad
	}
	m := binary.BigEndian.Uint32(proof[256:260])
	if m > 64 {
		return bad
	}
	off := 260 + 32*int(m) + 64
	if off+4 > len(proof) {
		return bad
	}
	k := binary.BigEndian.Uint32(proof[off : off+4])
	if int(k) != len(v.Qcp) || len(proof) != off+4+32*int(k) {
		return bad
	}
	return nil
}
