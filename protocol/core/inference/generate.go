package inference

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// PositionTree is the Merkle tree (SPEC.md §11.1) over a generation's
// per-position leaves.
var PositionTree = merkle.New("beluga/inference/v1")

// LeafData is the data of position k's leaf (§21.2): le32(k) || the byte
// sampled there || le64(the logits' exponent) || le64(z_c) for c = 0 … 255.
func LeafData(dst []byte, k int, sampled byte, z []int64, e int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(k))
	dst = append(dst, sampled)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(int64(e)))
	for _, v := range z {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
	}
	return dst
}

// Result is one generation: the bytes, why it stopped, and the receipt's
// commitments to them.
type Result struct {
	Output    []byte
	Finish    Finish
	Positions merkle.Digest
}

// Generate serves req with g (the model whose state digest is req.Model):
// §20.17's sampling from the prompt, one byte after another, until
// req.MaxTokens bytes or the output ends with a stop sequence. emit, if not
// nil, sees each byte as it is sampled (streaming); its error stops the
// generation.
func Generate(g *gpt.Generator, req *Request, emit func(k int, b byte) error) (*Result, error) {
	if err := req.Validate(g.Config().Context); err != nil {
		return nil, err
	}
	text := append(make([]byte, 0, len(req.Prompt)+req.MaxTokens), req.Prompt...)
	leaves := make([]merkle.Digest, 0, req.MaxTokens)
	buf := make([]byte, 0, 13+8*gpt.Vocab)
	res := &Result{Finish: FinishLength}
	for k := range req.MaxTokens {
		z, e, err := g.Logits(text)
		if err != nil {
			return nil, err
		}
		b := gpt.Sample(z, e, req.Temperature, req.Seed, int64(k))
		buf = LeafData(buf[:0], k, b, z, e)
		leaves = append(leaves, PositionTree.Leaf(buf))
		text = append(text, b)
		if emit != nil {
			if err := emit(k, b); err != nil {
				return nil, err
			}
		}
		if stopAt(text[len(req.Prompt):], req.Stop) {
			res.Finish = FinishStop
			break
		}
	}
	res.Output = text[len(req.Prompt):]
	res.Positions = PositionTree.Root(leaves)
	return res, nil
}

// NewReceipt returns the receipt of res for req, signed with key.
func NewReceipt(req *Request, res *Result, key ed25519.PrivateKey) (*Receipt, error) {
	rc := &Receipt{
		Model:            req.Model,
		Request:          req.Hash(),
		Seed:             req.Seed,
		Temperature:      uint32(req.Temperature),
		PromptTokens:     uint32(len(req.Prompt)),
		CompletionTokens: uint32(len(res.Output)),
		Finish:           res.Finish,
		Output:           OutputHash(res.Output),
		Positions:        res.Positions,
	}
	if err := rc.Sign(key); err != nil {
		return nil, fmt.Errorf("receipt for request %s: %w", req.ID, err)
	}
	return rc, nil
}
