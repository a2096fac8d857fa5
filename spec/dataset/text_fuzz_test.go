package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/spec/merkle"
)

// FuzzVerifyWindow feeds VerifyWindow hostile windows and proofs: a valid
// proof of a window of a 3-chunk corpus, then changed by the fuzzer (n,
// start, the data, chunks cut, grown or rewritten, indices, counts and
// siblings replaced from the input). It must never panic, must refuse
// with ErrBadWindow, and whatever it accepts under the true n must be the
// corpus's bytes at start.
func FuzzVerifyWindow(f *testing.F) {
	const n = 2*4096 + 1000
	corpus := modCorpus(n)
	tx, err := NewText(corpus)
	if err != nil {
		f.Fatal(err)
	}
	root := tx.Root()
	f.Add(int64(n), int64(4000), uint16(200), uint8(0), []byte{})
	f.Add(int64(n), int64(4000), uint16(200), uint8(1), []byte{0, 1, 2})
	f.Add(int64(n), int64(8192), uint16(1000), uint8(2), []byte{9, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0})
	f.Add(int64(n), int64(0), uint16(1), uint8(3), []byte{1})
	f.Add(int64(4096), int64(4095), uint16(1), uint8(4), bytes.Repeat([]byte{0xff}, 40))
	f.Add(int64(-1), int64(-1), uint16(0), uint8(5), []byte{})
	f.Add(int64(1<<40), int64(1<<39), uint16(65535), uint8(6), []byte{7, 7, 7, 7, 7, 7, 7, 7, 7})
	f.Fuzz(func(t *testing.T, n64, start64 int64, length uint16, mode uint8, in []byte) {
		vn, vstart := int(n64), int(start64)
		// The honest proof of the window, clipped into the corpus.
		ps, pl := int(uint64(start64)%n), max(int(length), 1)
		pl = min(pl, n-ps)
		proof, err := tx.WindowProof(ps, pl)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Clone(corpus[ps : ps+pl])
		u := func(k int) uint64 { // input word k, or 0
			var w [8]byte
			if k*8 < len(in) {
				copy(w[:], in[k*8:])
			}
			return binary.LittleEndian.Uint64(w[:])
		}
		switch mode % 8 {
		case 0: // honest proof, fuzzed n and start
			data = append(data, in...)
		case 1: // chunk bytes rewritten
			if len(proof.Chunks) > 0 && len(in) > 0 {
				c := proof.Chunks[int(u(0)%uint64(len(proof.Chunks)))]
				copy(c[int(u(1)%uint64(len(c))):], in[min(len(in), 16):])
			}
		case 2: // index and count replaced
			for k := range proof.Proofs {
				proof.Proofs[k].Index, proof.Proofs[k].Count = u(2*k), u(2*k+1)
			}
		case 3: // siblings cut or padded with input words
			for k := range proof.Proofs {
				s := proof.Proofs[k].Siblings[:int(u(0)%uint64(len(proof.Proofs[k].Siblings)+1))]
				for j := range int(u(1) % 64) {
					var d merkle.Digest
					binary.LittleEndian.PutUint64(d[:], u(j))
					s = append(s, d)
				}
				proof.Proofs[k].Siblings = s
			}
		case 4: // chunk list built from the input
			proof.Chunks = proof.Chunks[:0]
			for rest := in; len(rest) > 0; {
				k := min(len(rest), int(rest[0])*20+1)
				proof.Chunks, rest = append(proof.Chunks, rest[:k]), rest[k:]
			}
		case 5: // proofs dropped or duplicated
			if u(0)%2 == 0 {
				proof.Proofs = proof.Proofs[:len(proof.Proofs)/2]
			} else {
				proof.Proofs = append(proof.Proofs, proof.Proofs...)
			}
		case 6: // data from the input
			data = in
		case 7: // nil everywhere
			proof = TextWindowProof{Chunks: make([][]byte, len(proof.Chunks)), Proofs: make([]merkle.Proof, len(proof.Proofs))}
		}
		err = VerifyWindow(root, vn, vstart, data, proof)
		if err != nil {
			if !errors.Is(err, ErrBadWindow) {
				t.Fatalf("error %v does not wrap ErrBadWindow", err)
			}
			return
		}
		if vn == n && (vstart < 0 || vstart+len(data) > n || !bytes.Equal(data, corpus[vstart:vstart+len(data)])) {
			t.Fatalf("accepted %d bytes at %d that are not the corpus's", len(data), vstart)
		}
	})
}
