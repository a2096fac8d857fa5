package prover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"

	"github.com/beluga-compute/beluga/circuits/tile"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/core/zkcommit"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// KeyEntry names the Groth16 keys of one circuit in a Cache.
type KeyEntry struct {
	CircuitID ID `json:"circuit_id"`
	Groth16PK ID `json:"groth16_pk,omitempty"` // absent on a verifier's keyring
	Groth16VK ID `json:"groth16_vk"`
}

// TileCircuit is the compiled tile circuit (SPEC.md §17.2) of one layer
// shape.
type TileCircuit struct {
	CCS    constraint.ConstraintSystem
	Params tile.Params
	ID     ID
}

// Keyring finds the keys of tile circuits: an index from circuit ID to
// KeyEntry in Cache.Dir/index (written by `beluga zk setup finalize` or
// DevSetup), the keys themselves content-addressed in the Cache. Compiled
// circuits and decoded keys are kept in memory. Safe for concurrent use.
type Keyring struct {
	Cache Cache

	mu       sync.Mutex
	circuits map[tile.Params]*TileCircuit
	pks      map[ID]groth16.ProvingKey
	vks      map[ID]groth16.VerifyingKey
}

// NewKeyring opens the keyring of the key cache in dir.
func NewKeyring(dir string) *Keyring {
	return &Keyring{Cache: Cache{Dir: dir}, circuits: map[tile.Params]*TileCircuit{},
		pks: map[ID]groth16.ProvingKey{}, vks: map[ID]groth16.VerifyingKey{}}
}

func (k *Keyring) indexPath(id ID) string {
	return filepath.Join(k.Cache.Dir, "index", string(id)+".json")
}

// Register records e in the index.
func (k *Keyring) Register(e KeyEntry) error {
	if !e.CircuitID.valid() || !e.Groth16VK.valid() || (e.Groth16PK != "" && !e.Groth16PK.valid()) {
		return fmt.Errorf("%w: key entry with an invalid ID", ErrMalformed)
	}
	data, _ := json.MarshalIndent(e, "", "  ")
	path := k.indexPath(e.CircuitID)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Entry returns the index entry of a circuit; ErrNotFound if it has none.
func (k *Keyring) Entry(id ID) (KeyEntry, error) {
	if !id.valid() {
		return KeyEntry{}, fmt.Errorf("%w: circuit ID %q", ErrMalformed, id)
	}
	data, err := os.ReadFile(k.indexPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return KeyEntry{}, fmt.Errorf("%w: no keys for circuit %s in %s", ErrNotFound, id, k.Cache.Dir)
	}
	if err != nil {
		return KeyEntry{}, err
	}
	var e KeyEntry
	if err := json.Unmarshal(data, &e); err != nil || e.CircuitID != id {
		return KeyEntry{}, fmt.Errorf("%w: key index of circuit %s", ErrMalformed, id)
	}
	return e, nil
}

// Circuit compiles (once) the Groth16 tile circuit of layer j of s.
func (k *Keyring) Circuit(s *spec.Spec, j int) (*TileCircuit, error) {
	p, err := tile.ParamsFor(s, j)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	c := k.circuits[p]
	k.mu.Unlock()
	if c != nil {
		return c, nil
	}
	circuit, err := tile.New(p)
	if err != nil {
		return nil, err
	}
	ccs, err := CompileR1CS(circuit)
	if err != nil {
		return nil, err
	}
	id, err := CircuitID(ccs)
	if err != nil {
		return nil, err
	}
	c = &TileCircuit{CCS: ccs, Params: p, ID: id}
	k.mu.Lock()
	k.circuits[p] = c
	k.mu.Unlock()
	return c, nil
}

// ProvingKey returns the proving key of c.
func (k *Keyring) ProvingKey(c *TileCircuit) (groth16.ProvingKey, error) {
	e, err := k.Entry(c.ID)
	if err != nil {
		return nil, err
	}
	if e.Groth16PK == "" {
		return nil, fmt.Errorf("%w: the keyring holds no proving key for circuit %s", ErrNotFound, c.ID)
	}
	k.mu.Lock()
	pk := k.pks[e.Groth16PK]
	k.mu.Unlock()
	if pk != nil {
		return pk, nil
	}
	if pk, _, err = LoadGroth16Keys(k.Cache, e.Groth16PK, e.Groth16VK); err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.pks[e.Groth16PK] = pk
	k.mu.Unlock()
	return pk, nil
}

// VerifyingKey returns the verifying key of c.
func (k *Keyring) VerifyingKey(c *TileCircuit) (groth16.VerifyingKey, error) {
	e, err := k.Entry(c.ID)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	vk := k.vks[e.Groth16VK]
	k.mu.Unlock()
	if vk != nil {
		return vk, nil
	}
	if vk, err = LoadGroth16VK(k.Cache, e.Groth16VK); err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.vks[e.Groth16VK] = vk
	k.mu.Unlock()
	return vk, nil
}

// DevSetup runs a single-party Groth16 setup for every layer of s whose
// circuit has no keys in the keyring yet, and registers the keys. It is for
// development networks only: whoever runs it knows the toxic waste and can
// forge proofs; real networks take their keys from `beluga zk setup`.
// It returns the number of circuits set up.
func DevSetup(k *Keyring, s *spec.Spec) (int, error) {
	l, err := zkcommit.NewLayout(s)
	if err != nil {
		return 0, err
	}
	n := 0
	for j := range l.Layers {
		c, err := k.Circuit(s, j)
		if err != nil {
			return n, err
		}
		if _, err := k.Entry(c.ID); err == nil {
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return n, err
		}
		pk, vk, err := groth16.Setup(c.CCS)
		if err != nil {
			return n, err
		}
		pkID, vkID, err := StoreGroth16Keys(k.Cache, pk, vk)
		if err != nil {
			return n, err
		}
		if err := k.Register(KeyEntry{CircuitID: c.ID, Groth16PK: pkID, Groth16VK: vkID}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ProveTile proves challenge c of the confidential run in dir (SPEC.md
// §17.2) with the keyring's proving key; cs is the run's checkpoint store
// when the caller holds it open (nil: dir's own).
func ProveTile(ctx context.Context, k *Keyring, s *spec.Spec, train *dataset.Dataset, dir string, cs store.CheckpointStore, c zkchallenge.Challenge) ([]byte, error) {
	tc, err := k.Circuit(s, c.Layer)
	if err != nil {
		return nil, err
	}
	pk, err := k.ProvingKey(tc)
	if err != nil {
		return nil, err
	}
	w, err := TileWitnessStore(ctx, s, train, dir, cs, c)
	if err != nil {
		return nil, err
	}
	return ProveGroth16(tc.CCS, pk, w.Assignment(tc.Params))
}

// VerifyTile checks a proof of challenge c against the solver's zk trace z
// with the keyring's verifying key: nil only for a valid proof.
func VerifyTile(k *Keyring, s *spec.Spec, z *trace.ZKTrace, c zkchallenge.Challenge, proof []byte) error {
	tc, err := k.Circuit(s, c.Layer)
	if err != nil {
		return err
	}
	vk, err := k.VerifyingKey(tc)
	if err != nil {
		return err
	}
	pub, err := TilePublic(s, z, c)
	if err != nil {
		return err
	}
	return VerifyGroth16(vk, proof, pub.Assignment(tc.Params))
}
