package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/logger"
	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/circuits/tile"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// zkKeys is keys.json in a ceremony directory: the content IDs of the keys
// it produced, for one circuit.
type zkKeys struct {
	Circuit      string    `json:"circuit"` // tile circuit of one layer of one job shape
	CircuitID    prover.ID `json:"circuit_id"`
	Groth16PK    prover.ID `json:"groth16_pk,omitempty"`
	Groth16VK    prover.ID `json:"groth16_vk,omitempty"`
	PlonkPK      prover.ID `json:"plonk_pk,omitempty"`
	PlonkVK      prover.ID `json:"plonk_vk,omitempty"`
	PlonkCircuit prover.ID `json:"plonk_circuit_id,omitempty"`
}

func newZKCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "zk",
		Short: "Zero-knowledge tile proofs for confidential audits: setup ceremony, commit, prove, verify",
		Long: `A confidential job is audited without showing weights or data: the solver
commits a Poseidon2 root per step (zk commit, SPEC.md §17), and a challenged
16×16 weight tile of a step is proven to follow from its committed inputs by
the spec's gradient and update (zk prove); anyone checks the proof against the
committed roots in milliseconds (zk verify). Keys come from a multi-party
ceremony (zk setup) so that no single party can forge proofs.`,
		PersistentPreRun: func(*cobra.Command, []string) { logger.Disable() },
	}
	cmd.AddCommand(newZKSetupCmd(), newZKCommitCmd(), newZKProveCmd(), newZKVerifyCmd())
	return cmd
}

// tileCircuit compiles the tile circuit of layer j of s for a backend.
func tileCircuit(s *spec.Spec, j int, backend string) (constraint.ConstraintSystem, tile.Params, error) {
	p, err := tile.ParamsFor(s, j)
	if err != nil {
		return nil, p, &exitError{code: exitUsage, err: err}
	}
	c, err := tile.New(p)
	if err != nil {
		return nil, p, err
	}
	var ccs constraint.ConstraintSystem
	switch backend {
	case "groth16":
		ccs, err = prover.CompileR1CS(c)
	case "plonk":
		ccs, err = prover.CompileSCS(c)
	default:
		return nil, p, &exitError{code: exitUsage, err: fmt.Errorf("--backend must be groth16 or plonk")}
	}
	return ccs, p, err
}

func circuitName(s *spec.Spec, j int) (string, error) {
	id, err := s.ID()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("tile/%s/layer%d", hex.EncodeToString(id[:8]), j), nil
}

func readKeys(dir string) (*zkKeys, error) {
	data, err := os.ReadFile(filepath.Join(dir, "keys.json"))
	if err != nil {
		return nil, err
	}
	var k zkKeys
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("keys.json: %w", err)
	}
	return &k, nil
}

func writeKeys(dir string, k *zkKeys) error {
	data, _ := json.MarshalIndent(k, "", "  ")
	return os.WriteFile(filepath.Join(dir, "keys.json"), append(data, '\n'), 0o644)
}

func decodeBeacon(h string) ([]byte, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) == 0 || len(b) > 256 {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("--beacon must be 1 to 256 bytes of hex")}
	}
	return b, nil
}

func newZKSetupCmd() *cobra.Command {
	var dir, specPath, beacon, keysDir string
	var layer int
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Multi-party setup ceremony for a job's tile circuit",
		Long: `The ceremony lives in a directory that contributors pass along:

  zk setup new        --dir D --spec job.json --layer J   start phase 1, sized for the circuit (Groth16 and PLONK)
  zk setup contribute --dir D [--spec … --layer …]        add a contribution (phase 1, or phase 2 once started)
  zk setup verify     --dir D [--spec … --layer …]        verify every contribution so far
  zk setup seal       --dir D --spec … --layer … --beacon HEX   seal phase 1 with a public beacon, start phase 2
  zk setup finalize   --dir D --spec … --layer … --beacon HEX --keys CACHE
                                                          verify phase 2, seal it, write the Groth16 and PLONK
                                                          keys into the content-addressed cache, D/keys.json

Each contribution is checked against its predecessor before anyone builds on
it; a bad one stops the ceremony with exit status 1.`,
	}
	flags := func(c *cobra.Command) {
		c.Flags().StringVar(&dir, "dir", "", "ceremony directory")
		c.Flags().StringVar(&specPath, "spec", "", "job spec (JSON)")
		c.Flags().IntVar(&layer, "layer", 0, "linear layer (0-based) whose tile circuit this is")
	}
	load := func() (*spec.Spec, error) {
		if dir == "" || specPath == "" {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("--dir and --spec are required")}
		}
		return readSpec(specPath)
	}
	fail := func(err error) error {
		if errors.Is(err, prover.ErrCeremony) || errors.Is(err, prover.ErrCorrupt) {
			return &exitError{code: 1, err: err}
		}
		return err
	}

	newC := &cobra.Command{Use: "new", Args: cobra.NoArgs, Short: "Start a ceremony",
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := load()
			if err != nil {
				return err
			}
			r, _, err := tileCircuit(s, layer, "groth16")
			if err != nil {
				return err
			}
			p, _, err := tileCircuit(s, layer, "plonk")
			if err != nil {
				return err
			}
			n := max(uint64(r.GetNbConstraints()), prover.PlonkDomain(p))
			cer, err := prover.NewCeremony(dir, n)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(c.OutOrStdout(), "ceremony in %s: domain 2^%d (Groth16 %d constraints, PLONK %d)\n",
				dir, log2(cer.N()), r.GetNbConstraints(), p.GetNbConstraints())
			return nil
		}}
	flags(newC)

	contrib := &cobra.Command{Use: "contribute", Args: cobra.NoArgs, Short: "Add a contribution",
		RunE: func(c *cobra.Command, _ []string) error {
			cer, err := prover.OpenCeremony(dir)
			if err != nil {
				return fail(err)
			}
			t0 := time.Now()
			var k, phase int
			if meta, _ := readCeremonyPhase(dir); meta == 1 {
				phase = 1
				k, err = cer.ContributePhase1()
			} else {
				phase = 2
				s, err2 := load()
				if err2 != nil {
					return err2
				}
				r, _, err2 := tileCircuit(s, layer, "groth16")
				if err2 != nil {
					return err2
				}
				k, err = cer.ContributePhase2(r)
			}
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(c.OutOrStdout(), "phase %d contribution %d written in %v (your randomness is gone)\n", phase, k, time.Since(t0).Round(time.Millisecond))
			return nil
		}}
	flags(contrib)

	verify := &cobra.Command{Use: "verify", Args: cobra.NoArgs, Short: "Verify every contribution",
		RunE: func(c *cobra.Command, _ []string) error {
			cer, err := prover.OpenCeremony(dir)
			if err != nil {
				return fail(err)
			}
			k, err := cer.VerifyPhase1()
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(c.OutOrStdout(), "phase 1: %d contributions verified\n", k)
			if phase, _ := readCeremonyPhase(dir); phase == 2 {
				s, err := load()
				if err != nil {
					return err
				}
				r, _, err := tileCircuit(s, layer, "groth16")
				if err != nil {
					return err
				}
				k, err := cer.VerifyPhase2(r)
				if err != nil {
					return fail(err)
				}
				fmt.Fprintf(c.OutOrStdout(), "phase 2: %d contributions verified\n", k)
			}
			return nil
		}}
	flags(verify)

	seal := &cobra.Command{Use: "seal", Args: cobra.NoArgs, Short: "Seal phase 1 with a beacon and start phase 2",
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := load()
			if err != nil {
				return err
			}
			b, err := decodeBeacon(beacon)
			if err != nil {
				return err
			}
			cer, err := prover.OpenCeremony(dir)
			if err != nil {
				return fail(err)
			}
			if err := cer.SealPhase1(b); err != nil {
				return fail(err)
			}
			r, _, err := tileCircuit(s, layer, "groth16")
			if err != nil {
				return err
			}
			if err := cer.StartPhase2(r); err != nil {
				return fail(err)
			}
			fmt.Fprintln(c.OutOrStdout(), "phase 1 sealed; phase 2 started")
			return nil
		}}
	flags(seal)
	seal.Flags().StringVar(&beacon, "beacon", "", "public beacon (hex)")

	final := &cobra.Command{Use: "finalize", Args: cobra.NoArgs, Short: "Verify and seal phase 2; write the keys",
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := load()
			if err != nil {
				return err
			}
			b, err := decodeBeacon(beacon)
			if err != nil {
				return err
			}
			if keysDir == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--keys CACHE is required")}
			}
			cer, err := prover.OpenCeremony(dir)
			if err != nil {
				return fail(err)
			}
			r, _, err := tileCircuit(s, layer, "groth16")
			if err != nil {
				return err
			}
			pk, vk, err := cer.Finalize(r, b)
			if err != nil {
				return fail(err)
			}
			cache := prover.Cache{Dir: keysDir}
			k := &zkKeys{}
			if k.Circuit, err = circuitName(s, layer); err != nil {
				return err
			}
			if k.CircuitID, err = prover.CircuitID(r); err != nil {
				return err
			}
			if k.Groth16PK, k.Groth16VK, err = prover.StoreGroth16Keys(cache, pk, vk); err != nil {
				return err
			}
			// Daemons find the keys by circuit ID (--zk-keys CACHE).
			if err := prover.NewKeyring(keysDir).Register(prover.KeyEntry{CircuitID: k.CircuitID, Groth16PK: k.Groth16PK, Groth16VK: k.Groth16VK}); err != nil {
				return err
			}
			commons, err := cer.Commons()
			if err != nil {
				return fail(err)
			}
			sc, _, err := tileCircuit(s, layer, "plonk")
			if err != nil {
				return err
			}
			ppk, pvk, err := prover.SetupPlonk(sc, commons)
			if err != nil {
				return fail(err)
			}
			if k.PlonkCircuit, err = prover.CircuitID(sc); err != nil {
				return err
			}
			if k.PlonkPK, err = putWriterTo(cache, ppk); err != nil {
				return err
			}
			if k.PlonkVK, err = putWriterTo(cache, pvk); err != nil {
				return err
			}
			if err := writeKeys(dir, k); err != nil {
				return err
			}
			enc := json.NewEncoder(c.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(k)
		}}
	flags(final)
	final.Flags().StringVar(&beacon, "beacon", "", "public beacon (hex)")
	final.Flags().StringVar(&keysDir, "keys", "", "key cache directory")

	cmd.AddCommand(newC, contrib, verify, seal, final)
	return cmd
}

// readCeremonyPhase reports 1 while phase 1 is open, 2 once sealed.
func readCeremonyPhase(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "ceremony.json"))
	if err != nil {
		return 0, err
	}
	var m struct {
		Circuit string `json:"circuit_id"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, err
	}
	if m.Circuit == "" {
		return 1, nil
	}
	return 2, nil
}

func putWriterTo(c prover.Cache, w io.WriterTo) (prover.ID, error) {
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return "", err
	}
	return c.Put(b.Bytes())
}

func log2(n uint64) int {
	k := 0
	for n > 1 {
		n >>= 1
		k++
	}
	return k
}

func newZKCommitCmd() *cobra.Command {
	var dir, dataDir string
	cmd := &cobra.Command{
		Use:   "commit --run DIR",
		Short: "Compute a committed run's zk trace (one Poseidon2 root per step) into DIR/zktrace.txt",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--run DIR is required")}
			}
			s, err := readSpec(filepath.Join(dir, "spec.json"))
			if err != nil {
				return err
			}
			train, _, err := catalog.LoadData(s, dataDir)
			if err != nil {
				return err
			}
			t0 := time.Now()
			z, err := prover.CommitRun(c.Context(), s, train, dir, nil)
			if err != nil {
				return err
			}
			root := z.Root()
			el := time.Since(t0)
			fmt.Fprintf(c.OutOrStdout(), "zk trace root  %s\nsteps          %d\ntime           %v (%.1f ms per step)\n",
				hex.EncodeToString(root[:]), s.Steps, el.Round(time.Millisecond), float64(el.Microseconds())/1e3/float64(s.Steps+1))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "run", "", "run directory written by train --commit")
	cmd.Flags().StringVar(&dataDir, "data", "", "dataset directory (Fashion-MNIST)")
	return cmd
}

type zkChallengeFlags struct {
	step             int64
	layer, row, col  int
	keysDir, backend string
	ceremony, vkFlag string
}

func (f *zkChallengeFlags) register(c *cobra.Command) {
	c.Flags().Int64Var(&f.step, "step", 0, "challenged step")
	c.Flags().IntVar(&f.layer, "layer", 0, "challenged linear layer (0-based)")
	c.Flags().IntVar(&f.row, "row", 0, "challenged tile's row block (16 rows each)")
	c.Flags().IntVar(&f.col, "col", 0, "challenged tile's column block (16 columns each)")
	c.Flags().StringVar(&f.keysDir, "keys", "", "key cache directory")
	c.Flags().StringVar(&f.ceremony, "ceremony", "", "ceremony directory whose keys.json names the keys")
	c.Flags().StringVar(&f.backend, "backend", "groth16", "groth16 or plonk")
}

func (f *zkChallengeFlags) challenge() zkchallenge.Challenge {
	return zkchallenge.Challenge{Step: f.step, Layer: f.layer, Row: f.row, Col: f.col}
}

func (f *zkChallengeFlags) keys() (*zkKeys, prover.Cache, error) {
	if f.keysDir == "" || f.ceremony == "" {
		return nil, prover.Cache{}, &exitError{code: exitUsage, err: fmt.Errorf("--keys CACHE and --ceremony DIR are required")}
	}
	k, err := readKeys(f.ceremony)
	if err != nil {
		return nil, prover.Cache{}, &exitError{code: exitUsage, err: err}
	}
	return k, prover.Cache{Dir: f.keysDir}, nil
}

func newZKProveCmd() *cobra.Command {
	var f zkChallengeFlags
	var dir, dataDir, out string
	cmd := &cobra.Command{
		Use:   "prove --run DIR --step T --layer J --row R --col C --ceremony D --keys CACHE --out PROOF",
		Short: "Prove a challenged tile of a committed run",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || out == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--run DIR and --out PROOF are required")}
			}
			s, err := readSpec(filepath.Join(dir, "spec.json"))
			if err != nil {
				return err
			}
			train, _, err := catalog.LoadData(s, dataDir)
			if err != nil {
				return err
			}
			k, cache, err := f.keys()
			if err != nil {
				return err
			}
			w, err := prover.TileWitness(c.Context(), s, train, dir, f.challenge())
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			ccs, p, err := tileCircuit(s, f.layer, f.backend)
			if err != nil {
				return err
			}
			var proof []byte
			var t0 time.Time
			switch f.backend {
			case "groth16":
				if id, _ := prover.CircuitID(ccs); id != k.CircuitID {
					return &exitError{code: exitUsage, err: fmt.Errorf("the ceremony's keys are for circuit %s, this challenge needs %s", k.CircuitID, id)}
				}
				pk, _, err := prover.LoadGroth16Keys(cache, k.Groth16PK, k.Groth16VK)
				if err != nil {
					return err
				}
				t0 = time.Now()
				proof, err = prover.ProveGroth16(ccs, pk, w.Assignment(p))
				if err != nil {
					return err
				}
			case "plonk":
				pk, err := loadPlonkPK(cache, k.PlonkPK)
				if err != nil {
					return err
				}
				t0 = time.Now()
				if proof, err = prover.ProvePlonk(ccs, pk, w.Assignment(p)); err != nil {
					return err
				}
			}
			if err := os.WriteFile(out, proof, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "proof          %s (%d bytes, %s)\nprove time     %v (keys loaded beforehand)\n", out, len(proof), f.backend, time.Since(t0).Round(time.Millisecond))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&dir, "run", "", "run directory written by train --commit (with zktrace.txt from zk commit)")
	cmd.Flags().StringVar(&dataDir, "data", "", "dataset directory (Fashion-MNIST)")
	cmd.Flags().StringVar(&out, "out", "", "proof file to write")
	return cmd
}

func loadPlonkPK(c prover.Cache, id prover.ID) (plonk.ProvingKey, error) {
	data, err := c.Get(id, prover.MaxProvingKeyBytes)
	if err != nil {
		return nil, err
	}
	pk := plonk.NewProvingKey(ecc.BN254)
	if _, err := pk.ReadFrom(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("PLONK proving key: %w", err)
	}
	return pk, nil
}

func loadPlonkVK(c prover.Cache, id prover.ID) (plonk.VerifyingKey, error) {
	data, err := c.Get(id, prover.MaxKeyBytes)
	if err != nil {
		return nil, err
	}
	vk := plonk.NewVerifyingKey(ecc.BN254)
	if _, err := vk.ReadFrom(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("PLONK verifying key: %w", err)
	}
	return vk, nil
}

func newZKVerifyCmd() *cobra.Command {
	var f zkChallengeFlags
	var specPath, zkPath string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "verify --spec job.json --zktrace FILE --step T --layer J --row R --col C --ceremony D --keys CACHE PROOF",
		Short: "Verify a tile proof against the solver's committed zk trace (exit 0 only if valid)",
		Long: `Verify rebuilds the public inputs itself — the two committed roots from the
zk trace, the tile's leaf indices, the step's learning rate from the spec — and
checks the proof. Exit status: 0 valid, 1 invalid, 2 malformed input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if specPath == "" || zkPath == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--spec and --zktrace are required")}
			}
			s, err := readSpec(specPath)
			if err != nil {
				return err
			}
			k, cache, err := f.keys()
			if err != nil {
				return err
			}
			z, err := prover.ReadZKTrace(s, zkPath)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			pub, err := prover.TilePublic(s, z, f.challenge())
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			proof, err := readLimitedFile(args[0], prover.MaxPlonkProofBytes)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			p, err := tile.ParamsFor(s, f.layer)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			var verr error
			var ms float64
			switch f.backend {
			case "groth16":
				vk, err := prover.LoadGroth16VK(cache, k.Groth16VK)
				if err != nil {
					return err
				}
				t0 := time.Now()
				verr = prover.VerifyGroth16(vk, proof, pub.Assignment(p))
				ms = float64(time.Since(t0).Microseconds()) / 1e3
			case "plonk":
				vk, err := loadPlonkVK(cache, k.PlonkVK)
				if err != nil {
					return err
				}
				t0 := time.Now()
				verr = prover.VerifyPlonk(vk, proof, pub.Assignment(p))
				ms = float64(time.Since(t0).Microseconds()) / 1e3
			default:
				return &exitError{code: exitUsage, err: fmt.Errorf("--backend must be groth16 or plonk")}
			}
			valid := verr == nil
			if jsonOut {
				rep := map[string]any{"valid": valid, "verify_ms": ms, "proof_bytes": len(proof), "backend": f.backend,
					"step": f.step, "layer": f.layer, "row": f.row, "col": f.col}
				if verr != nil {
					rep["error"] = verr.Error()
				}
				if err := json.NewEncoder(c.OutOrStdout()).Encode(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(c.OutOrStdout(), "valid          %v\nverify time    %.2f ms\nproof          %d bytes (%s)\n", valid, ms, len(proof), f.backend)
			}
			switch {
			case verr == nil:
				return nil
			case errors.Is(verr, prover.ErrMalformed):
				return &exitError{code: exitUsage, err: verr}
			default:
				return &exitError{code: 1, err: verr}
			}
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&specPath, "spec", "", "job spec (JSON)")
	cmd.Flags().StringVar(&zkPath, "zktrace", "", "the solver's committed zk trace (zktrace.txt)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object: valid, verify_ms, proof_bytes, …")
	return cmd
}

func readLimitedFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than any proof (%d)", path, st.Size(), limit)
	}
	data := make([]byte, st.Size())
	_, err = io.ReadFull(f, data)
	return data, err
}
