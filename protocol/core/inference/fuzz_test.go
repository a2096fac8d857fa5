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

// FuzzDecodeRecord: any bytes decode to a record or an error; a record
// that decodes re-encodes to one that decodes to the same values.
func FuzzDecodeRecord(f *testing.F) {
	m := newModel(f, config(1, 5))
	req := &inference.Request{ID: "r", Model: m.digest, Prompt: []byte("ab"), MaxTokens: 4, Stop: [][]byte{[]byte("x")}}
	res, rc := serve(f, m, req, key(1))
	f.Add(inference.NewRecord("tiny", req, res.Output, rc).Marshal())
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"object":"inference.receipt","id":"","receipt":"00","request":{},"output":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, out, r, err := inference.DecodeRecord(b)
		if err != nil {
			return
		}
		q2, out2, r2, err := inference.DecodeRecord(inference.NewRecord("", q, out, r).Marshal())
		if err != nil || q2.Hash() != q.Hash() || !bytes.Equal(out, out2) || *r2 != *r {
			t.Fatalf("round trip: %v", err)
		}
	})
}
