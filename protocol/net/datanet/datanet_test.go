package datanet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/spec/dataset"
)

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t *testing.T, a, b host.Host) {
	t.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func corpus(t *testing.T, n int, seed byte) (Request, []byte) {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	tx, err := dataset.NewText(b)
	if err != nil {
		t.Fatal(err)
	}
	return Request{Root: tx.Root(), Bytes: n}, b
}

// TestFetch: a daemon's host fetches a corpus by root and size from a
// serving host; the cache keeps it and answers again without the network.
func TestFetch(t *testing.T) {
	t.Parallel()
	q, b := corpus(t, 3*dataset.TextChunkBytes+17, 1)
	coord, daemon := newHost(t), newHost(t)
	served := 0
	Serve(coord, func(root [32]byte, n int) ([]byte, bool, error) {
		if root != q.Root || n != q.Bytes {
			return nil, false, nil
		}
		served++
		return b, true, nil
	}, nil, nil)
	connect(t, daemon, coord)
	got, err := Fetch(context.Background(), daemon, coord.ID(), q)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Fetch: %d bytes, %v", len(got), err)
	}
	c := &Cache{Dir: filepath.Join(t.TempDir(), "text"), Host: daemon, Peer: coord.ID()}
	path, err := c.File(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := os.ReadFile(path); !bytes.Equal(f, b) {
		t.Fatal("cached file differs from the corpus")
	}
	if _, err := c.File(context.Background(), q); err != nil || served != 2 {
		t.Fatalf("second File: %v, served %d times, want 2 (once by Fetch, once by the cache)", err, served)
	}
	// A missing corpus is refused with the coordinator's message.
	other, _ := corpus(t, 100, 2)
	if _, err := Fetch(context.Background(), daemon, coord.ID(), other); !errors.Is(err, ErrNotServed) {
		t.Fatalf("missing corpus: %v, want ErrNotServed", err)
	}
}

// TestFetchRefusesWrongBytes: a coordinator that answers with other bytes
// (one byte flipped: same size, other root; or one byte more) is refused
// and nothing is cached.
func TestFetchRefusesWrongBytes(t *testing.T) {
	t.Parallel()
	q, b := corpus(t, 5000, 3)
	for name, answer := range map[string][]byte{
		"flipped byte": append(append([]byte{}, b[:100]...), append([]byte{b[100] ^ 1}, b[101:]...)...),
		"longer":       append(bytes.Clone(b), 'x'),
		"shorter":      b[:len(b)-1],
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			coord, daemon := newHost(t), newHost(t)
			Serve(coord, func([32]byte, int) ([]byte, bool, error) { return answer, true, nil }, nil, nil)
			connect(t, daemon, coord)
			c := &Cache{Dir: t.TempDir(), Host: daemon, Peer: coord.ID()}
			if _, err := c.File(context.Background(), q); !errors.Is(err, ErrMismatch) {
				t.Fatalf("File: %v, want ErrMismatch", err)
			}
			if ents, _ := os.ReadDir(c.Dir); len(ents) != 0 {
				t.Fatalf("cache holds %d entries after a refused answer", len(ents))
			}
		})
	}
}

// TestServeRefusesStrangers: allow decides who may fetch.
func TestServeRefusesStrangers(t *testing.T) {
	t.Parallel()
	q, b := corpus(t, 64, 4)
	coord, daemon := newHost(t), newHost(t)
	Serve(coord, func([32]byte, int) ([]byte, bool, error) { return b, true, nil }, func(peer.ID) bool { return false }, nil)
	connect(t, daemon, coord)
	if _, err := Fetch(context.Background(), daemon, coord.ID(), q); !errors.Is(err, ErrNotServed) {
		t.Fatalf("stranger: %v, want ErrNotServed", err)
	}
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	q, _ := corpus(t, 10, 5)
	if got, err := DecodeRequest(q.Encode()); err != nil || got != q {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, q.Encode()[:39], append(q.Encode(), 0), (Request{Bytes: 0}).Encode(), (Request{Bytes: MaxBytes + 1}).Encode()} {
		if _, err := DecodeRequest(bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("DecodeRequest(%d bytes): %v, want ErrBadRequest", len(bad), err)
		}
	}
	if _, err := ParseRoot("xyz"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("ParseRoot: %v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add((Request{Bytes: 7}).Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(q.Encode(), b) {
			t.Fatal("a decoded request does not encode to its bytes")
		}
	})
}

func FuzzReadAnswer(f *testing.F) {
	b := []byte("hello, corpus")
	tx, _ := dataset.NewText(b)
	q := Request{Root: tx.Root(), Bytes: len(b)}
	f.Add(append([]byte{0}, b...))
	f.Add(append([]byte{1}, "missing"...))
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, answer []byte) {
		got, err := ReadAnswer(bytes.NewReader(answer), q)
		if err == nil && !bytes.Equal(got, b) {
			t.Fatal("accepted other bytes than the corpus")
		}
	})
}

// TestServeBusy: a server sending MaxServing corpora refuses one more as
// busy, and serves again once one has been sent.
func TestServeBusy(t *testing.T) {
	t.Parallel()
	q, b := corpus(t, 100, 6)
	coord, daemon := newHost(t), newHost(t)
	entered, release := make(chan struct{}, MaxServing), make(chan struct{})
	Serve(coord, func([32]byte, int) ([]byte, bool, error) {
		entered <- struct{}{}
		<-release
		return b, true, nil
	}, nil, nil)
	connect(t, daemon, coord)
	errs := make(chan error, MaxServing)
	for range MaxServing {
		go func() {
			_, err := Fetch(context.Background(), daemon, coord.ID(), q)
			errs <- err
		}()
	}
	for range MaxServing {
		<-entered
	}
	if _, err := Fetch(context.Background(), daemon, coord.ID(), q); !errors.Is(err, ErrNotServed) || !strings.Contains(err.Error(), "retry later") {
		t.Fatalf("request past MaxServing: %v, want a busy refusal", err)
	}
	close(release)
	for range MaxServing {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Fetch(context.Background(), daemon, coord.ID(), q); err != nil {
		t.Fatalf("after the busy spell: %v", err)
	}
}

// TestCacheFetchOutlivesCaller: a caller that stops waiting gets
// ErrOnItsWay; the fetch goes on into the cache, and a later caller gets
// the file from that same fetch (the corpus is sent once).
func TestCacheFetchOutlivesCaller(t *testing.T) {
	t.Parallel()
	q, b := corpus(t, 9000, 7)
	coord, daemon := newHost(t), newHost(t)
	entered, release := make(chan struct{}, 2), make(chan struct{})
	Serve(coord, func([32]byte, int) ([]byte, bool, error) {
		entered <- struct{}{}
		<-release
		return b, true, nil
	}, nil, nil)
	connect(t, daemon, coord)
	c := &Cache{Dir: t.TempDir(), Host: daemon, Peer: coord.ID(), Ctx: context.Background()}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-entered; cancel() }()
	if _, err := c.File(ctx, q); !errors.Is(err, ErrOnItsWay) {
		t.Fatalf("caller that stopped waiting: %v, want ErrOnItsWay", err)
	}
	close(release)
	path, err := c.File(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := os.ReadFile(path); !bytes.Equal(f, b) {
		t.Fatal("the cached corpus differs")
	}
	if len(entered) != 0 {
		t.Fatal("the corpus was fetched twice")
	}
}
