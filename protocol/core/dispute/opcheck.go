package dispute

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// HashAt returns where a graph keeps the named tensor and the digest of v
// there: what a referee checks an opened or recomputed value with.
type HashAt func(name string, v opgraph.Tensor) (int, merkle.Digest, error)

// CheckOpening checks that opened are operator o's inputs, in order, each
// hashing (by hash) to its agreed digest in agreed, and returns them keyed
// by name. Its errors wrap errBad. This package's referee and
// protocol/core/inferdispute's both check an opening with it.
func CheckOpening(o *opgraph.OpInfo, opened []NamedTensor, agreed []merkle.Digest, hash HashAt, errBad error) (map[string]opgraph.Tensor, error) {
	if len(opened) != len(o.Inputs) {
		return nil, fmt.Errorf("%w: %s has %d inputs, %d opened", errBad, o.Name, len(o.Inputs), len(opened))
	}
	in := make(map[string]opgraph.Tensor, len(opened))
	for k, name := range o.Inputs {
		if opened[k].Name != name {
			return nil, fmt.Errorf("%w: %s input %d is %s, opened %q", errBad, o.Name, k, name, opened[k].Name)
		}
		i, h, err := hash(name, opened[k].Tensor)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBad, err)
		}
		if h != agreed[i] {
			return nil, fmt.Errorf("%w: %s does not match its agreed hash", errBad, name)
		}
		in[name] = opened[k].Tensor
	}
	return in, nil
}

// MatchOutputs hashes operator o's recomputed outputs out and reports
// whether the solver's and the verifier's claimed hashes match all of them.
func MatchOutputs(o *opgraph.OpInfo, out map[string]opgraph.Tensor, solver, verifier []merkle.Digest, hash HashAt) (solverOK, verifierOK bool, err error) {
	solverOK, verifierOK = true, true
	for _, name := range o.Outputs {
		i, h, err := hash(name, out[name])
		if err != nil {
			return false, false, err
		}
		solverOK = solverOK && solver[i] == h
		verifierOK = verifierOK && verifier[i] == h
	}
	return solverOK, verifierOK, nil
}
