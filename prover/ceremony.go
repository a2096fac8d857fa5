package prover

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	"github.com/consensys/gnark/constraint"
	cs "github.com/consensys/gnark/constraint/bn254"
)

// MaxCeremonyDomain bounds the phase-1 domain (2^22 constraints).
const MaxCeremonyDomain = 1 << 22

// Ceremony is a multi-party setup kept in a directory that contributors
// pass around (or share):
//
//	ceremony.json        domain size N; after phase 1 is sealed, its beacon,
//	                     the ID of the sealed SRS and the circuit of phase 2
//	phase1/0001.bin …    phase-1 contributions (powers of τ), in order
//	commons.bin          the sealed phase-1 SRS (content-checked)
//	phase2/0001.bin …    phase-2 contributions for the circuit, in order
//
// Each contribution is verified against its predecessor (its proof of
// knowledge and the consistency of every updated point) before anything
// builds on it; a tampered contribution, one that skips or forks the chain,
// or one for another circuit is rejected with ErrCeremony.
type Ceremony struct {
	dir  string
	meta ceremonyMeta
}

type ceremonyMeta struct {
	N         uint64 `json:"n"`
	Beacon1   string `json:"phase1_beacon,omitempty"`
	CommonsID ID     `json:"commons_id,omitempty"`
	CircuitID ID     `json:"circuit_id,omitempty"`
}

// NewCeremony starts a ceremony for circuits of up to n constraints (n is
// rounded up to a power of two) in dir, which must not hold one already.
func NewCeremony(dir string, n uint64) (*Ceremony, error) {
	n = ecc.NextPowerOfTwo(max(n, 2))
	if n > MaxCeremonyDomain {
		return nil, fmt.Errorf("%w: domain %d above %d", ErrCeremony, n, MaxCeremonyDomain)
	}
	if _, err := os.Stat(filepath.Join(dir, "ceremony.json")); err == nil {
		return nil, fmt.Errorf("%w: %s already holds a ceremony", ErrCeremony, dir)
	}
	for _, d := range []string{dir, filepath.Join(dir, "phase1"), filepath.Join(dir, "phase2")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	c := &Ceremony{dir: dir, meta: ceremonyMeta{N: n}}
	return c, c.saveMeta()
}

// OpenCeremony opens the ceremony in dir.
func OpenCeremony(dir string) (*Ceremony, error) {
	data, err := os.ReadFile(filepath.Join(dir, "ceremony.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCeremony, err)
	}
	c := &Ceremony{dir: dir}
	if err := json.Unmarshal(data, &c.meta); err != nil {
		return nil, fmt.Errorf("%w: ceremony.json: %v", ErrCeremony, err)
	}
	if n := c.meta.N; n < 2 || n > MaxCeremonyDomain || n&(n-1) != 0 {
		return nil, fmt.Errorf("%w: domain %d", ErrCeremony, n)
	}
	return c, nil
}

// N is the phase-1 domain size.
func (c *Ceremony) N() uint64 { return c.meta.N }

func (c *Ceremony) saveMeta() error {
	data, err := json.MarshalIndent(c.meta, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(c.dir, "ceremony.json"), append(data, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// contributions lists phase p's files in order.
func (c *Ceremony) contributions(p int) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(c.dir, fmt.Sprintf("phase%d", p)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".bin" {
			out = append(out, filepath.Join(c.dir, fmt.Sprintf("phase%d", p), e.Name()))
		}
	}
	sort.Strings(out)
	for i, f := range out {
		if filepath.Base(f) != fmt.Sprintf("%04d.bin", i+1) {
			return nil, fmt.Errorf("%w: phase %d contribution %s out of sequence", ErrCeremony, p, filepath.Base(f))
		}
	}
	return out, nil
}

// phase1Template is the serialization of an initial phase-1 object of
// domain n: a valid contribution has the same layout plus a 32-byte
// challenge.
func phase1Template(n uint64) []byte {
	var b bytes.Buffer
	if _, err := mpcsetup.NewPhase1(n).WriteTo(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// readPhase1 decodes an untrusted phase-1 contribution of domain n. Its
// length and the domain size it declares are checked against a template
// before the decoder allocates anything.
func readPhase1(path string, n uint64, template []byte) (*mpcsetup.Phase1, error) {
	data, err := readLimited(path, int64(len(template))+64)
	if err != nil {
		return nil, err
	}
	// The three update proofs come first (fixed size), then N as a u64.
	off := proofsLen(template, n)
	if len(data) != len(template)+32 || off < 0 || binary.BigEndian.Uint64(data[off:off+8]) != n {
		return nil, fmt.Errorf("%w: %s is not a phase-1 contribution of domain %d", ErrCeremony, filepath.Base(path), n)
	}
	p := new(mpcsetup.Phase1)
	if _, err := p.ReadFrom(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCeremony, filepath.Base(path), err)
	}
	return p, nil
}

// proofsLen finds where N sits in a phase-1 serialization: the template's
// first occurrence of the big-endian n after the proofs. The proofs have a
// fixed size, so the offset is the same in every contribution.
func proofsLen(template []byte, n uint64) int {
	var want [8]byte
	binary.BigEndian.PutUint64(want[:], n)
	// The proofs are 3 × (G1 + G2) compressed = 288 bytes.
	const off = 3 * (32 + 64)
	if len(template) < off+8 || !bytes.Equal(template[off:off+8], want[:]) {
		return -1
	}
	return off
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrCeremony, filepath.Base(path), limit)
	}
	return data, nil
}

// ContributePhase1 adds a phase-1 contribution (fresh randomness from
// crypto/rand, discarded afterwards) on top of the latest one and returns
// its number. It verifies the latest contribution against its predecessor
// first, so nobody builds on a bad one.
func (c *Ceremony) ContributePhase1() (int, error) {
	if c.meta.Beacon1 != "" {
		return 0, fmt.Errorf("%w: phase 1 is sealed", ErrCeremony)
	}
	files, err := c.contributions(1)
	if err != nil {
		return 0, err
	}
	tmpl := phase1Template(c.meta.N)
	prev := mpcsetup.NewPhase1(c.meta.N)
	if len(files) > 0 {
		if len(files) > 1 {
			if prev, err = readPhase1(files[len(files)-2], c.meta.N, tmpl); err != nil {
				return 0, err
			}
		}
		last, err := readPhase1(files[len(files)-1], c.meta.N, tmpl)
		if err != nil {
			return 0, err
		}
		if err := prev.Verify(last); err != nil {
			return 0, fmt.Errorf("%w: contribution %d: %v", ErrCeremony, len(files), err)
		}
		prev = last
	}
	prev.Contribute()
	var b bytes.Buffer
	if _, err := prev.WriteTo(&b); err != nil {
		return 0, err
	}
	k := len(files) + 1
	return k, writeFileAtomic(filepath.Join(c.dir, "phase1", fmt.Sprintf("%04d.bin", k)), b.Bytes())
}

// VerifyPhase1 verifies every phase-1 contribution in order and returns
// how many there are.
func (c *Ceremony) VerifyPhase1() (int, error) {
	ps, err := c.phase1Chain()
	if err != nil {
		return 0, err
	}
	return len(ps), nil
}

func (c *Ceremony) phase1Chain() ([]*mpcsetup.Phase1, error) {
	files, err := c.contributions(1)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no phase-1 contribution", ErrCeremony)
	}
	tmpl := phase1Template(c.meta.N)
	prev := mpcsetup.NewPhase1(c.meta.N)
	var out []*mpcsetup.Phase1
	for i, f := range files {
		p, err := readPhase1(f, c.meta.N, tmpl)
		if err != nil {
			return nil, err
		}
		if err := prev.Verify(p); err != nil {
			return nil, fmt.Errorf("%w: phase-1 contribution %d: %v", ErrCeremony, i+1, err)
		}
		out = append(out, p)
		prev = p
	}
	return out, nil
}

// SealPhase1 verifies phase 1, seals it with a public beacon (a value
// nobody could know before the last contribution, e.g. a future block hash
// or drand round) and stores the resulting SRS; phase 2 can start.
func (c *Ceremony) SealPhase1(beacon []byte) error {
	if c.meta.Beacon1 != "" {
		return fmt.Errorf("%w: phase 1 is already sealed", ErrCeremony)
	}
	if len(beacon) == 0 {
		return fmt.Errorf("%w: empty beacon", ErrCeremony)
	}
	ps, err := c.phase1Chain()
	if err != nil {
		return err
	}
	commons := ps[len(ps)-1].Seal(beacon)
	var b bytes.Buffer
	if _, err := commons.WriteTo(&b); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(c.dir, "commons.bin"), b.Bytes()); err != nil {
		return err
	}
	c.meta.Beacon1 = hex.EncodeToString(beacon)
	c.meta.CommonsID = IDOf(b.Bytes())
	return c.saveMeta()
}

// Commons returns the sealed phase-1 SRS, checked against its recorded ID.
func (c *Ceremony) Commons() (*mpcsetup.SrsCommons, error) {
	if c.meta.CommonsID == "" {
		return nil, fmt.Errorf("%w: phase 1 is not sealed", ErrCeremony)
	}
	data, err := readLimited(filepath.Join(c.dir, "commons.bin"), int64(len(phase1Template(c.meta.N))))
	if err != nil {
		return nil, err
	}
	if IDOf(data) != c.meta.CommonsID {
		return nil, fmt.Errorf("%w: commons.bin does not match its ID", ErrCorrupt)
	}
	if len(data) < 8 || binary.BigEndian.Uint64(data[:8]) != c.meta.N {
		return nil, fmt.Errorf("%w: commons.bin domain", ErrCeremony)
	}
	var s mpcsetup.SrsCommons
	if _, err := s.ReadFrom(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%w: commons.bin: %v", ErrCeremony, err)
	}
	return &s, nil
}

// truncate returns the powers-of-τ SRS for a smaller domain n: the powers
// are prefix-closed, so the first entries of each vector are the SRS of
// domain n under the same τ, α, β.
func truncate(s *mpcsetup.SrsCommons, n uint64) (*mpcsetup.SrsCommons, error) {
	if n > uint64(len(s.G2.Tau)) {
		return nil, fmt.Errorf("%w: circuit needs domain %d, the ceremony has %d", ErrCeremony, n, len(s.G2.Tau))
	}
	t := &mpcsetup.SrsCommons{}
	t.G1.Tau = s.G1.Tau[:2*n-1]
	t.G1.AlphaTau = s.G1.AlphaTau[:n]
	t.G1.BetaTau = s.G1.BetaTau[:n]
	t.G2.Tau = s.G2.Tau[:n]
	t.G2.Beta = s.G2.Beta
	return t, nil
}

// phase2Base returns the initial phase-2 object of ccs and its evaluations.
func (c *Ceremony) phase2Base(ccs constraint.ConstraintSystem) (*mpcsetup.Phase2, *mpcsetup.Phase2Evaluations, *mpcsetup.SrsCommons, error) {
	r, ok := ccs.(*cs.R1CS)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: not a BN254 R1CS", ErrCeremony)
	}
	id, err := CircuitID(ccs)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.meta.CircuitID != "" && c.meta.CircuitID != id {
		return nil, nil, nil, fmt.Errorf("%w: phase 2 is for circuit %s, not %s", ErrCeremony, c.meta.CircuitID, id)
	}
	all, err := c.Commons()
	if err != nil {
		return nil, nil, nil, err
	}
	commons, err := truncate(all, ecc.NextPowerOfTwo(uint64(ccs.GetNbConstraints())))
	if err != nil {
		return nil, nil, nil, err
	}
	base := new(mpcsetup.Phase2)
	evals := base.Initialize(r, commons)
	return base, &evals, commons, nil
}

func serialize(w io.WriterTo) []byte {
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// readPhase2 decodes an untrusted phase-2 contribution whose layout must
// match the template's (the initial object of the same circuit): every
// slice length is compared before the decoder allocates.
func readPhase2(path string, template []byte) (*mpcsetup.Phase2, error) {
	data, err := readLimited(path, int64(len(template))+64)
	if err != nil {
		return nil, err
	}
	if len(data) != len(template)+32 || !sameLayout2(data, template) {
		return nil, fmt.Errorf("%w: %s is not a phase-2 contribution for this circuit", ErrCeremony, filepath.Base(path))
	}
	p := new(mpcsetup.Phase2)
	if _, err := p.ReadFrom(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCeremony, filepath.Base(path), err)
	}
	return p, nil
}

// sameLayout2 walks the length prefixes of two phase-2 serializations:
// u16 k, Delta (G1), PKK (u32 + G1s), Z (u32 + G1s), Delta (G2), k × (u32 +
// G1s), …; all counts must agree.
func sameLayout2(a, b []byte) bool {
	if len(a) < 2 || len(b) < 2 || !bytes.Equal(a[:2], b[:2]) {
		return false
	}
	k := int(binary.BigEndian.Uint16(a[:2]))
	off := 2 + 32
	slice := func() bool {
		if off+4 > len(a) || off+4 > len(b) || !bytes.Equal(a[off:off+4], b[off:off+4]) {
			return false
		}
		off += 4 + 32*int(binary.BigEndian.Uint32(b[off:off+4]))
		return off <= len(b)
	}
	if !slice() || !slice() {
		return false
	}
	off += 64
	for range k {
		if !slice() {
			return false
		}
	}
	return true
}

// StartPhase2 binds phase 2 to the circuit ccs; phase 1 must be sealed.
func (c *Ceremony) StartPhase2(ccs constraint.ConstraintSystem) error {
	if c.meta.CircuitID != "" {
		return fmt.Errorf("%w: phase 2 already started", ErrCeremony)
	}
	if _, _, _, err := c.phase2Base(ccs); err != nil {
		return err
	}
	id, _ := CircuitID(ccs)
	c.meta.CircuitID = id
	return c.saveMeta()
}

// ContributePhase2 adds a phase-2 contribution for ccs on top of the
// latest (verified against its predecessor first) and returns its number.
func (c *Ceremony) ContributePhase2(ccs constraint.ConstraintSystem) (int, error) {
	if c.meta.CircuitID == "" {
		return 0, fmt.Errorf("%w: phase 2 not started", ErrCeremony)
	}
	base, _, _, err := c.phase2Base(ccs)
	if err != nil {
		return 0, err
	}
	tmpl := serialize(base)
	files, err := c.contributions(2)
	if err != nil {
		return 0, err
	}
	prev := base
	if len(files) > 0 {
		if len(files) > 1 {
			if prev, err = readPhase2(files[len(files)-2], tmpl); err != nil {
				return 0, err
			}
		}
		last, err := readPhase2(files[len(files)-1], tmpl)
		if err != nil {
			return 0, err
		}
		if err := prev.Verify(last); err != nil {
			return 0, fmt.Errorf("%w: phase-2 contribution %d: %v", ErrCeremony, len(files), err)
		}
		prev = last
	}
	prev.Contribute()
	k := len(files) + 1
	return k, writeFileAtomic(filepath.Join(c.dir, "phase2", fmt.Sprintf("%04d.bin", k)), serialize(prev))
}

// VerifyPhase2 verifies every phase-2 contribution for ccs in order and
// returns how many there are.
func (c *Ceremony) VerifyPhase2(ccs constraint.ConstraintSystem) (int, error) {
	_, _, _, ps, err := c.phase2Chain(ccs)
	return len(ps), err
}

func (c *Ceremony) phase2Chain(ccs constraint.ConstraintSystem) (*mpcsetup.Phase2, *mpcsetup.Phase2Evaluations, *mpcsetup.SrsCommons, []*mpcsetup.Phase2, error) {
	base, evals, commons, err := c.phase2Base(ccs)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	files, err := c.contributions(2)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if len(files) == 0 {
		return nil, nil, nil, nil, fmt.Errorf("%w: no phase-2 contribution", ErrCeremony)
	}
	tmpl := serialize(base)
	prev := base
	var out []*mpcsetup.Phase2
	for i, f := range files {
		p, err := readPhase2(f, tmpl)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		if err := prev.Verify(p); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("%w: phase-2 contribution %d: %v", ErrCeremony, i+1, err)
		}
		out = append(out, p)
		prev = p
	}
	return base, evals, commons, out, nil
}

// Finalize verifies every phase-2 contribution for ccs, seals phase 2 with
// a public beacon and returns the Groth16 keys.
func (c *Ceremony) Finalize(ccs constraint.ConstraintSystem, beacon []byte) (groth16.ProvingKey, groth16.VerifyingKey, error) {
	if len(beacon) == 0 {
		return nil, nil, fmt.Errorf("%w: empty beacon", ErrCeremony)
	}
	_, evals, commons, ps, err := c.phase2Chain(ccs)
	if err != nil {
		return nil, nil, err
	}
	pk, vk := ps[len(ps)-1].Seal(commons, evals, beacon)
	return pk, vk, nil
}
