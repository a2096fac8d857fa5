package infer_test

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/protocol/net/infer"
)

// FuzzReadFrame: any bytes read as frames or an error, never a panic or
// a payload over MaxFrame.
func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	infer.WriteFrame(&b, infer.FrameBytes, []byte{1})
	infer.WriteFrame(&b, infer.FrameReceipt, make([]byte, 246))
	f.Add(b.Bytes())
	f.Add([]byte{'B', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			_, p, err := infer.ReadFrame(r, infer.FrameBytes, infer.FrameReceipt, infer.FrameError, infer.FrameAnnounce, infer.FrameRequest)
			if err != nil {
				return
			}
			if len(p) > infer.MaxFrame {
				t.Fatal("oversized payload")
			}
		}
	})
}

// FuzzDecodeAnnounce: any bytes decode to an announcement within the
// limits, or an error.
func FuzzDecodeAnnounce(f *testing.F) {
	f.Add((&infer.Announce{Models: []infer.AnnouncedModel{{Digest: "07" + string(bytes.Repeat([]byte("0"), 62)), Context: 128}}, Slots: 2}).Encode())
	f.Add([]byte(`{"models":[],"slots":0,"busy":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := infer.DecodeAnnounce(data)
		if err != nil {
			return
		}
		if a.Slots < 1 || a.Busy > a.Slots || len(a.Models) > infer.MaxAnnouncedModels {
			t.Fatalf("accepted %+v", a)
		}
	})
}

// FuzzDecodeWeightsOffer: any bytes decode to a checked offer (a GPT spec
// hashing to the job, 1 to MaxWeightsHolders peers, a grant) or an
// error, never a panic.
func FuzzDecodeWeightsOffer(f *testing.F) {
	f.Add([]byte(`{"id":"m","digest":"` + strings.Repeat("0", 64) + `","job":"` + strings.Repeat("0", 64) + `","step":1,"spec":"{}","holders":[{"peer":"x"}],"grant":"00"}`))
	f.Add([]byte(`{"holders":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, c, err := infer.DecodeWeightsOffer(data)
		if err != nil {
			return
		}
		if id, _ := c.Spec.ID(); id != c.Job || len(c.Holders) < 1 || len(c.Holders) > infer.MaxWeightsHolders || len(c.Grant) == 0 {
			t.Fatalf("accepted %+v", c)
		}
	})
}
