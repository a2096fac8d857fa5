package inference_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/prng"
	"github.com/beluga-compute/beluga/spec/spectest"
)

func config(layers int, seed uint64) gpt.Config {
	return gpt.Config{Context: 32, Dim: 16, Layers: layers, Heads: 2, FF: 32, Bits: 12, Batch: 1, Seed: seed,
		Beta1: gpt.Ratio{Num: 58982, Shift: 16}, Beta2: gpt.Ratio{Num: 62259, Shift: 16}, WeightDecay: gpt.Ratio{Num: 0, Shift: 16}, Eps: 1,
		LRShift: 40, LR: []gpt.LRPoint{{Step: 0, Value: 1 << 29}}}
}

type model struct {
	g      *gpt.Generator
	digest merkle.Digest
}

func newModel(t testing.TB, c gpt.Config) model {
	t.Helper()
	g, err := gpt.NewGenerator(c, c.Init(), kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	// Tests name a model by its config; the protocol names it by its
	// state digest, which a test needs only to be distinct.
	return model{g, merkle.Digest{byte(c.Layers), byte(c.Seed)}}
}

func key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// request draws a request of the honest traffic: prompts of 1 to 16
// bytes, up to the context, greedy or sampled, with or without stops.
func request(m model, i int) *inference.Request {
	s := prng.Derive(uint64(i), "test.request", 0, 0)
	at := func(j int, n uint64) int { return int(prng.Below(s.At(uint64(j)), n)) }
	p := make([]byte, 1+at(0, 16))
	for j := range p {
		p[j] = byte('a' + at(10+j, 26))
	}
	r := &inference.Request{ID: fmt.Sprintf("req-%d", i), Model: m.digest, Prompt: p,
		MaxTokens: 1 + at(1, uint64(32-len(p))), Seed: s.At(2), Temperature: int64(at(3, 3) * 40000)}
	if at(4, 2) == 0 {
		r.Stop = [][]byte{{byte('a' + at(5, 26))}, []byte("zz")}
	}
	return r
}

func serve(t testing.TB, m model, req *inference.Request, k ed25519.PrivateKey) (*inference.Result, *inference.Receipt) {
	t.Helper()
	res, err := inference.Generate(m.g, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := inference.NewReceipt(req, res, k)
	if err != nil {
		t.Fatal(err)
	}
	return res, rc
}

// TestReceiptFixedSize: a receipt is 246 bytes (≤ 256) for one byte of
// output and for a full context, and decodes to itself.
func TestReceiptFixedSize(t *testing.T) {
	t.Parallel()
	m := newModel(t, config(2, 5))
	for _, n := range []int{1, 31} {
		req := &inference.Request{ID: "r", Model: m.digest, Prompt: []byte("x"), MaxTokens: n, Temperature: 65536}
		res, rc := serve(t, m, req, key(1))
		if len(res.Output) != n {
			t.Fatalf("%d bytes, want %d", len(res.Output), n)
		}
		b := rc.Encode()
		if len(b) != inference.ReceiptSize || len(b) > 256 {
			t.Fatalf("receipt of %d output bytes encodes to %d bytes", n, len(b))
		}
		back, err := inference.DecodeReceipt(b)
		if err != nil || *back != *rc {
			t.Fatalf("decode: %v, %+v", err, back)
		}
	}
}

// TestGenerateIsTheGenerator: without stops, Generate's bytes are §20.17's
// (gpt.Generator.Generate's).
func TestGenerateIsTheGenerator(t *testing.T) {
	t.Parallel()
	m := newModel(t, config(2, 5))
	req := &inference.Request{ID: "r", Model: m.digest, Prompt: []byte("The whale "), MaxTokens: 20, Seed: 3, Temperature: 52429}
	res, _ := serve(t, m, req, key(1))
	want, err := m.g.Generate(req.Prompt, req.MaxTokens, req.Seed, req.Temperature)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Output, want) || res.Finish != inference.FinishLength {
		t.Fatalf("Generate %q (%v), the generator %q", res.Output, res.Finish, want)
	}
}

// TestHonestReceiptsPass: no false positives — every honest receipt of a
// varied traffic (greedy and sampled, stops and lengths) passes the check:
// 300 requests, 1,000 with BELUGA_SLOW=1.
func TestHonestReceiptsPass(t *testing.T) {
	t.Parallel()
	m := newModel(t, config(2, 5))
	n, stops := 300, 0
	if spectest.IsSlow() {
		n = 1000
	}
	for i := range n {
		req := request(m, i)
		res, rc := serve(t, m, req, key(1))
		if res.Finish == inference.FinishStop {
			stops++
		}
		if err := inference.Check(m.g, m.digest, req, res.Output, rc); err != nil {
			t.Fatalf("request %d: honest receipt refused: %v", i, err)
		}
	}
	if stops == 0 {
		t.Fatal("no request stopped on a stop sequence: the traffic does not test the stop rule")
	}
}

// TestCheatersCaught: each way of cheating the issue names — another
// (smaller) model, other weights, a truncated context, other sampling,
// made-up bytes, a wrong stop — gives a receipt the check proves false
// (ErrFraud), on every request tried.
func TestCheatersCaught(t *testing.T) {
	t.Parallel()
	honest := newModel(t, config(2, 5))
	smaller := newModel(t, config(1, 5))
	other := newModel(t, config(2, 6))
	k := key(7)
	// as serves req with model m (or a modified request) and signs the
	// receipt as if for req.
	as := func(m model, req *inference.Request, edit func(*inference.Request)) (*inference.Result, *inference.Receipt) {
		r := *req
		r.Model = m.digest
		if edit != nil {
			edit(&r)
		}
		res, err := inference.Generate(m.g, &r, nil)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := inference.NewReceipt(req, res, k)
		if err != nil {
			t.Fatal(err)
		}
		return res, rc
	}
	cheats := []struct {
		name string
		run  func(req *inference.Request) (*inference.Result, *inference.Receipt)
	}{
		{"smaller model", func(req *inference.Request) (*inference.Result, *inference.Receipt) { return as(smaller, req, nil) }},
		{"other weights", func(req *inference.Request) (*inference.Result, *inference.Receipt) { return as(other, req, nil) }},
		{"truncated context", func(req *inference.Request) (*inference.Result, *inference.Receipt) {
			return as(honest, req, func(r *inference.Request) { r.Prompt = r.Prompt[len(r.Prompt)-1:] })
		}},
		{"other seed", func(req *inference.Request) (*inference.Result, *inference.Receipt) {
			return as(honest, req, func(r *inference.Request) { r.Seed++; r.Temperature = 65536 })
		}},
		{"made-up bytes", func(req *inference.Request) (*inference.Result, *inference.Receipt) {
			res, _ := as(honest, req, nil)
			res.Output = slices.Clone(res.Output)
			res.Output[len(res.Output)-1] ^= 0x40
			rc, _ := inference.NewReceipt(req, res, k)
			return res, rc
		}},
		{"stops early", func(req *inference.Request) (*inference.Result, *inference.Receipt) {
			res, _ := as(honest, req, func(r *inference.Request) { r.MaxTokens = 1; r.Stop = nil })
			rc, _ := inference.NewReceipt(req, res, k)
			return res, rc
		}},
	}
	for _, c := range cheats {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for i := range 20 {
				req := request(honest, 1000+i)
				req.MaxTokens = 32 - len(req.Prompt)
				req.Stop = nil
				if c.name == "truncated context" && len(req.Prompt) < 2 {
					req.Prompt = append(req.Prompt, 'q')
					req.MaxTokens--
				}
				res, rc := c.run(req)
				err := inference.Check(honest.g, honest.digest, req, res.Output, rc)
				if !errors.Is(err, inference.ErrFraud) {
					t.Fatalf("request %d: check says %v, want fraud", i, err)
				}
			}
		})
	}
}

// TestCheckBlamesNobodyForOthersBytes: a receipt altered by anyone but
// its signer fails its signature; a good receipt checked against another
// request, output or model is not for them — neither is fraud.
func TestCheckBlamesNobodyForOthersBytes(t *testing.T) {
	t.Parallel()
	m := newModel(t, config(2, 5))
	req := &inference.Request{ID: "r", Model: m.digest, Prompt: []byte("abc"), MaxTokens: 8, Temperature: 65536}
	res, rc := serve(t, m, req, key(1))
	enc := rc.Encode()
	for i := range enc {
		b := slices.Clone(enc)
		b[i] ^= 1
		bad, err := inference.DecodeReceipt(b)
		if err != nil {
			continue // the version or finish byte
		}
		if err := inference.Check(m.g, m.digest, req, res.Output, bad); !errors.Is(err, inference.ErrSignature) {
			t.Fatalf("byte %d flipped: %v, want a bad signature", i, err)
		}
	}
	other := *req
	other.ID = "r2"
	out := slices.Clone(res.Output)
	out[0] ^= 1
	for name, err := range map[string]error{
		"other request": inference.Check(m.g, m.digest, &other, res.Output, rc),
		"other output":  inference.Check(m.g, m.digest, req, out, rc),
		"other model":   inference.Check(m.g, merkle.Digest{9}, req, res.Output, rc),
	} {
		if !errors.Is(err, inference.ErrNotFor) {
			t.Errorf("%s: %v, want ErrNotFor", name, err)
		}
	}
}

// TestRequestLimits: requests past §21.1's limits are refused before any
// generation.
func TestRequestLimits(t *testing.T) {
	t.Parallel()
	m := newModel(t, config(1, 5))
	ok := inference.Request{ID: "r", Prompt: []byte("ab"), MaxTokens: 30}
	for name, edit := range map[string]func(r *inference.Request){
		"no id":            func(r *inference.Request) { r.ID = "" },
		"long id":          func(r *inference.Request) { r.ID = string(make([]byte, 65)) },
		"empty prompt":     func(r *inference.Request) { r.Prompt = nil },
		"zero max_tokens":  func(r *inference.Request) { r.MaxTokens = 0 },
		"negative tokens":  func(r *inference.Request) { r.MaxTokens = -1 },
		"past the context": func(r *inference.Request) { r.MaxTokens = 31 },
		"prompt too long":  func(r *inference.Request) { r.Prompt = make([]byte, 32); r.MaxTokens = 1 },
		"hot":              func(r *inference.Request) { r.Temperature = gpt.MaxTemperature + 1 },
		"cold":             func(r *inference.Request) { r.Temperature = -1 },
		"five stops":       func(r *inference.Request) { r.Stop = [][]byte{{1}, {2}, {3}, {4}, {5}} },
		"empty stop":       func(r *inference.Request) { r.Stop = [][]byte{{}} },
		"long stop":        func(r *inference.Request) { r.Stop = [][]byte{make([]byte, 33)} },
	} {
		r := ok
		edit(&r)
		if _, err := inference.Generate(m.g, &r, nil); !errors.Is(err, inference.ErrRequest) {
			t.Errorf("%s: %v, want ErrRequest", name, err)
		}
	}
	if _, err := inference.Generate(m.g, &ok, nil); err != nil {
		t.Fatalf("the valid request: %v", err)
	}
}

// TestTextDropsTheStop: the client's text omits the stop sequence the
// output ended with.
func TestTextDropsTheStop(t *testing.T) {
	t.Parallel()
	stops := [][]byte{[]byte("\n\n"), []byte("END")}
	for _, c := range []struct {
		out    string
		finish inference.Finish
		want   string
	}{{"hello END", inference.FinishStop, "hello "}, {"a\n\n", inference.FinishStop, "a"}, {"abc", inference.FinishLength, "abc"}} {
		if got := inference.Text([]byte(c.out), c.finish, stops); string(got) != c.want {
			t.Errorf("Text(%q) = %q, want %q", c.out, got, c.want)
		}
	}
}

// TestRecordRoundTrip: a record carries request, output and receipt
// exactly; a record whose ID is not its receipt's is refused.
func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	m := newModel(t, config(2, 5))
	req := &inference.Request{ID: "r", Model: m.digest, Prompt: []byte("ab\xff"), MaxTokens: 6, Seed: 1 << 63, Temperature: 65536,
		Stop: [][]byte{[]byte("q")}}
	res, rc := serve(t, m, req, key(1))
	rec := inference.NewRecord("tiny", req, res.Output, rc)
	q, out, r, err := inference.DecodeRecord(rec.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := inference.Check(m.g, m.digest, q, out, r); err != nil {
		t.Fatalf("the decoded record does not check: %v", err)
	}
	rec.ID = "00"
	if _, _, _, err := inference.DecodeRecord(rec.Marshal()); !errors.Is(err, inference.ErrReceipt) {
		t.Fatalf("wrong id: %v", err)
	}
}
