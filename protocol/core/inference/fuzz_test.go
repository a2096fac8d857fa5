package inference_test

import (
	"bytes"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/inference"
)

// FuzzDecodeReceipt: any bytes decode to a receipt that re-encodes to
// exactly them, or to an ErrReceipt error; never a panic.
func FuzzDecodeReceipt(f *testing.F) {
	m := newModel(f, config(1, 5))
	req := &inference.Request{ID: "r", Model: m.digest, Prompt: []byte("ab"), MaxTokens: 4}
	_, rc := serve(f, m, req, key(1))
	f.Add(rc.Encode())
	f.Add([]byte{})
	f.Add(make([]byte, inference.ReceiptSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := inference.DecodeReceipt(b)
		if err != nil {
			if r != nil {
				t.Fatal("a receipt and an error")
			}
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatal("decode/encode is not the identity")
		}
		_ = r.Verify()
		_ = r.ID()
	})
}
