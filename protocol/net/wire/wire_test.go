package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/net/pb"
)

func key(t testing.TB, seed byte) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func samples(t testing.TB) []Message {
	_, other := key(t, 9)
	var d [32]byte
	d[0], d[31] = 7, 9
	return []Message{
		&Hello{Role: RoleSolver, Backend: "cpu", GPUName: "none", MACsPerSecond: 1e11, AskNanoUSDPerCU: 3, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}},
		&Heartbeat{State: StateRunning, Step: 17, LatestDigest: d, LossQ16: 151_000, Backend: "vulkan (llvmpipe)"},
		&JobOffer{SpecJSON: []byte(`{"a":1}`), MaxPriceMicroUSD: 10, BondMicroUSD: 5},
		&Assign{SpecJSON: []byte(`{}`), ResumeStep: 200, ResumeDigest: d, Providers: []peer.ID{other}, Entries: []TraceEntry{{0, d}, {200, d}}, Grant: []byte("g")},
		&TraceCommit{Steps: 20, TraceRoot: d, FinalDigest: d, Entries: []TraceEntry{{0, d}, {10, d}, {20, d}}, ZKEntries: []TraceEntry{{0, d}, {1, d}}},
		&CheckpointAnnounce{Step: 200, Digest: d, Entries: []TraceEntry{{190, d}, {200, d}}, Providers: []peer.ID{other}, Grant: []byte("g")},
		&AuditTask{Solver: other, TraceRoot: d, Beacon: []byte("b"), SpecJSON: []byte(`{}`), Entries: []TraceEntry{{0, d}}, Providers: []peer.ID{other}, ZKEntries: []TraceEntry{{0, d}}, Grant: []byte("g")},
		sampleReport(t, other, 3),
		&ManifestRequest{Digest: d, Step: 200, Grant: []byte("g")},
		&Manifest{Data: []byte("manifest")},
		&ChunkRequest{Step: 200, Hashes: [][32]byte{d, d}, Grant: []byte("g")},
		&ChunkResponse{Hashes: [][32]byte{d}, Sizes: []uint32{65536}},
		&DisputeQuery{Kind: DisputeOpen, Step: 3, Name: "layers.0.dw"},
		&DisputeAnswer{Payload: []byte{1, 2}},
		&Ack{OK: true},
		&ProofRequest{Step: 7, Layer: 2, Row: 1, Col: 5},
		&Proof{Proof: make([]byte, 196)},
		&Beacon{Beacon: []byte("beacon")},
		&Grant{Grantee: other, Expires: time.UnixMilli(1_800_000_000_123)},
	}
}

func TestRoundTripEveryMessage(t *testing.T) {
	k, id := key(t, 1)
	job := [32]byte{1, 2, 3}
	var buf bytes.Buffer
	msgs := samples(t)
	for i, m := range msgs {
		e, err := Seal(k, job, uint64(i+1), m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if err := Write(&buf, e); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	g := NewGuard()
	for i, m := range msgs {
		e, err := Read(r, m.Type())
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if e.Sender != id || e.Job != job || e.Seq != uint64(i+1) {
			t.Fatalf("%T: envelope %+v", m, e)
		}
		if err := g.Check(e); err != nil {
			t.Fatal(err)
		}
		got, err := Decode(e)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%T: got %+v, want %+v", m, got, m)
		}
	}
}

func TestForgeryAndMisuseAreRejected(t *testing.T) {
	k, _ := key(t, 1)
	_, mallory := key(t, 2)
	job := [32]byte{4}
	e, err := Seal(k, job, 5, &Ack{OK: true})
	if err != nil {
		t.Fatal(err)
	}
	clone := func() *pb.Envelope { return proto.Clone(e).(*pb.Envelope) }
	cases := map[string]struct {
		edit func(*pb.Envelope)
		want error
	}{
		"changed body":   {func(c *pb.Envelope) { c.Body = append(c.Body, 0) }, ErrBadSignature},
		"other job":      {func(c *pb.Envelope) { c.JobId[0] ^= 1 }, ErrBadSignature},
		"other seq":      {func(c *pb.Envelope) { c.Seq++ }, ErrBadSignature},
		"other sender":   {func(c *pb.Envelope) { c.Sender = []byte(mallory) }, ErrBadSignature},
		"unsigned":       {func(c *pb.Envelope) { c.Signature = nil }, ErrBadSignature},
		"other type":     {func(c *pb.Envelope) { c.Type = pb.Type_HEARTBEAT }, ErrWrongType},
		"unknown type":   {func(c *pb.Envelope) { c.Type = 99 }, ErrMalformed},
		"other version":  {func(c *pb.Envelope) { c.Version = 2 }, ErrMalformed},
		"short job":      {func(c *pb.Envelope) { c.JobId = c.JobId[:5] }, ErrMalformed},
		"garbage sender": {func(c *pb.Envelope) { c.Sender = []byte{1, 2, 3} }, ErrMalformed},
		"oversized body": {func(c *pb.Envelope) { c.Body = make([]byte, 4096) }, ErrTooLarge},
	}
	for name, tc := range cases {
		c := clone()
		tc.edit(c)
		if _, err := Open(c, TypeAck); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if _, err := Open(clone(), TypeAck); err != nil {
		t.Fatal(err)
	}
}

func TestOversizedFrameIsRefusedBeforeAllocation(t *testing.T) {
	var buf bytes.Buffer
	// A length prefix of 1 GiB and nothing behind it.
	buf.Write([]byte{0x80, 0x80, 0x80, 0x80, 0x04})
	if _, err := Read(bufio.NewReader(&buf), TypeAck); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("1 GiB frame: %v", err)
	}
	buf.Reset()
	buf.Write([]byte{0x80, 0x80, 0x80, 0x80, 0x04})
	if _, err := ReadRaw(bufio.NewReader(&buf), MaxChunkBytes, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("1 GiB raw frame: %v", err)
	}
}

func TestGuard(t *testing.T) {
	_, a := key(t, 1)
	_, b := key(t, 2)
	g := NewGuard()
	ok := func(id peer.ID, seq uint64) {
		t.Helper()
		if err := g.Check(&Envelope{Sender: id, Seq: seq}); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	bad := func(id peer.ID, seq uint64) {
		t.Helper()
		if err := g.Check(&Envelope{Sender: id, Seq: seq}); !errors.Is(err, ErrReplay) {
			t.Fatalf("seq %d replayed: %v", seq, err)
		}
	}
	ok(a, 1)
	ok(a, 3)
	ok(a, 2) // out of order, once
	bad(a, 2)
	bad(a, 3)
	ok(b, 2) // another sender's sequence is its own
	ok(a, 5000)
	bad(a, 5000-GuardWindow) // too old
	ok(a, 5000-GuardWindow+1)
	bad(a, 5000-GuardWindow+1)
}

func FuzzRead(f *testing.F) {
	k, _ := key(f, 1)
	for i, m := range samples(f) {
		e, _ := Seal(k, [32]byte{}, uint64(i), m)
		var buf bytes.Buffer
		Write(&buf, e)
		f.Add(buf.Bytes(), uint8(m.Type()))
	}
	f.Fuzz(func(t *testing.T, data []byte, typ uint8) {
		e, err := Read(bufio.NewReader(bytes.NewReader(data)), Type(typ%16))
		if err != nil {
			return
		}
		if _, err := Decode(e); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode error %v is not ErrMalformed", err)
		}
	})
}

// FuzzDecode feeds arbitrary bodies of every type to Decode.
func FuzzDecode(f *testing.F) {
	for _, m := range samples(f) {
		e, _ := Seal(mustKey(f), [32]byte{}, 1, m)
		f.Add(e.Body, uint8(m.Type()))
	}
	f.Fuzz(func(t *testing.T, body []byte, typ uint8) {
		m, err := Decode(&Envelope{Type: Type(typ % 16), Body: body})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if _, err := Seal(mustKey(t), [32]byte{}, 1, m); err != nil && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("a decoded %T does not seal: %v", m, err)
		}
	})
}

func mustKey(t testing.TB) crypto.PrivKey { k, _ := key(t, 3); return k }

// TestReadTellsTransportFromMalformed: a stream that ends between frames
// is io.EOF, one cut inside a frame is a transport error (the peer's
// bytes were never wrong), and a complete frame that does not decode is
// malformed — only that last one may count against the peer.
func TestReadTellsTransportFromMalformed(t *testing.T) {
	k, _ := key(t, 1)
	e, err := Seal(k, [32]byte{1}, 1, &Ack{OK: true})
	if err != nil {
		t.Fatal(err)
	}
	var frame bytes.Buffer
	if err := Write(&frame, e); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bufio.NewReader(bytes.NewReader(nil)), TypeAck); !errors.Is(err, io.EOF) {
		t.Fatalf("empty stream: %v", err)
	}
	cut := frame.Bytes()[:frame.Len()/2]
	_, err = Read(bufio.NewReader(bytes.NewReader(cut)), TypeAck)
	if !errors.Is(err, ErrTransport) || errors.Is(err, ErrMalformed) {
		t.Fatalf("frame cut by the transport: %v", err)
	}
	garbage := append([]byte{8}, bytes.Repeat([]byte{0xff}, 8)...)
	_, err = Read(bufio.NewReader(bytes.NewReader(garbage)), TypeAck)
	if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrTransport) {
		t.Fatalf("complete frame of garbage: %v", err)
	}
}

// TestGrantSealsAndOpens: a sealed grant opens to its issuer, job and
// fields; a grant with a broken signature, another type of envelope, or
// oversized bytes do not open.
func TestGrantSealsAndOpens(t *testing.T) {
	t.Parallel()
	k, issuer := key(t, 1)
	_, grantee := key(t, 2)
	job := [32]byte{4, 2}
	exp := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
	e, err := Seal(k, job, 7, &Grant{Grantee: grantee, Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := EncodeEnvelope(e)
	if err != nil {
		t.Fatal(err)
	}
	env, g, err := OpenGrant(raw)
	if err != nil {
		t.Fatal(err)
	}
	if env.Sender != issuer || env.Job != job || g.Grantee != grantee || !g.Expires.Equal(exp) {
		t.Fatalf("opened %+v %+v", env, g)
	}
	e.Signature[0] ^= 1
	forged, _ := EncodeEnvelope(e)
	if _, _, err := OpenGrant(forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged grant: %v", err)
	}
	ack, _ := Seal(k, job, 8, &Ack{OK: true})
	notGrant, _ := proto.Marshal(ack)
	if _, _, err := OpenGrant(notGrant); !errors.Is(err, ErrWrongType) {
		t.Fatalf("an ack as a grant: %v", err)
	}
	if _, _, err := OpenGrant(make([]byte, MaxGrantBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized grant: %v", err)
	}
	if _, _, err := OpenGrant([]byte{0xff, 0xff}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage grant: %v", err)
	}
}

// TestTraceConversionsRoundTrip: trace entries cross the wire boundary
// and come back unchanged, digest and zk alike.
func TestTraceConversionsRoundTrip(t *testing.T) {
	t.Parallel()
	es := []trace.Entry{{Step: 0, Digest: [32]byte{1}}, {Step: 10, Digest: [32]byte{2}}}
	zs := []trace.ZKEntry{{Step: 0, Root: [32]byte{3}}, {Step: 1, Root: [32]byte{4}}}
	if got := Entries(TraceEntries(es)); !reflect.DeepEqual(got, es) {
		t.Fatalf("digest entries %v, want %v", got, es)
	}
	if got := ZKEntries(ZKTraceEntries(zs)); !reflect.DeepEqual(got, zs) {
		t.Fatalf("zk entries %v, want %v", got, zs)
	}
	job := [32]byte{9}
	if tr := Trace(job, TraceEntries(es)); tr.Job != job || tr.Root() != (&trace.Trace{Job: job, Entries: es}).Root() {
		t.Fatalf("trace %+v", tr)
	}
	if TraceEntries(nil) != nil || Entries(nil) != nil {
		t.Fatal("nil entries converted to non-nil")
	}
}
