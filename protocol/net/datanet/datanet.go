// Package datanet moves a client's text corpus from the coordinator, which
// keeps what clients upload, to the solvers and verifiers that train and
// audit on it. A request names the corpus as SPEC.md §20 does, by its text
// commitment (spec/dataset.Text.Root) and its size; the answer is refused
// unless it has exactly that size and that root, so a coordinator (or
// anyone between) cannot hand a daemon other bytes than the spec names.
//
// The protocol is one request and one answer per stream:
//
//	request: root (32 bytes) ‖ le64 size
//	answer:  status (1 byte) ‖ the corpus (status 0) or a message (≤ 256 bytes)
package datanet

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/model"
)

// Protocol is the libp2p protocol ID of corpus fetches.
const Protocol = "/beluga/data/text/1"

// MaxBytes bounds a corpus fetched or served (64 MiB, the upload limit).
const MaxBytes = 64 << 20

// RequestLen is the size of a request.
const RequestLen = 32 + 8

// maxMessage bounds a refusal's message.
const maxMessage = 256

// Answer statuses.
const (
	statusOK      = 0
	statusMissing = 1
	statusRefused = 2
)

// Timeout bounds one fetch (a 64 MiB corpus over a slow link included).
const Timeout = 5 * time.Minute

var (
	// ErrBadRequest: a request that is not root ‖ le64 size with a size
	// in 1 … MaxBytes.
	ErrBadRequest = errors.New("datanet: malformed corpus request")
	// ErrMismatch: the answer is not the corpus asked for (other size or
	// other root); it is not used or kept.
	ErrMismatch = errors.New("datanet: the corpus received is not the one the spec names")
	// ErrNotServed: the coordinator does not have the corpus, or refused
	// to serve it to this peer.
	ErrNotServed = errors.New("datanet: the coordinator does not serve this corpus")
)

// Request names a corpus.
type Request struct {
	Root  [32]byte
	Bytes int
}

// Encode returns the request's bytes.
func (q Request) Encode() []byte {
	return binary.LittleEndian.AppendUint64(bytes.Clone(q.Root[:]), uint64(q.Bytes))
}

// DecodeRequest parses a request, refusing anything but exactly
// RequestLen bytes naming a size in 1 … MaxBytes.
func DecodeRequest(b []byte) (Request, error) {
	if len(b) != RequestLen {
		return Request{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadRequest, len(b), RequestLen)
	}
	var q Request
	copy(q.Root[:], b)
	n := binary.LittleEndian.Uint64(b[32:])
	if n < 1 || n > MaxBytes {
		return Request{}, fmt.Errorf("%w: a corpus of %d bytes, want 1 … %d", ErrBadRequest, n, MaxBytes)
	}
	q.Bytes = int(n)
	return q, nil
}

// ParseRoot parses a spec's data.text.root (64 hex digits).
func ParseRoot(s string) ([32]byte, error) {
	var r [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return r, fmt.Errorf("%w: the corpus root %q is not 64 hex digits", ErrBadRequest, s)
	}
	copy(r[:], b)
	return r, nil
}

// Check returns nil if b is the corpus q names: q.Bytes bytes whose text
// root is q.Root. Otherwise the error wraps ErrMismatch.
func Check(q Request, b []byte) error {
	if len(b) != q.Bytes {
		return fmt.Errorf("%w: %d bytes, want %d", ErrMismatch, len(b), q.Bytes)
	}
	t, err := dataset.NewText(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	if t.Root() != q.Root {
		r := t.Root()
		return fmt.Errorf("%w: root %x…, want %x…", ErrMismatch, r[:8], q.Root[:8])
	}
	return nil
}

// ReadAnswer reads the answer to q from r and checks it (Check): it reads
// at most q.Bytes+1 corpus bytes, so a peer cannot make it hold more.
func ReadAnswer(r io.Reader, q Request) ([]byte, error) {
	var st [1]byte
	if _, err := io.ReadFull(r, st[:]); err != nil {
		return nil, fmt.Errorf("datanet: read the answer: %w", err)
	}
	switch st[0] {
	case statusOK:
	case statusMissing, statusRefused:
		msg, _ := io.ReadAll(io.LimitReader(r, maxMessage))
		return nil, fmt.Errorf("%w: %s", ErrNotServed, bytes.ToValidUTF8(msg, []byte("?")))
	default:
		return nil, fmt.Errorf("%w: answer status %d", ErrMismatch, st[0])
	}
	if q.Bytes < 1 || q.Bytes > MaxBytes {
		return nil, fmt.Errorf("%w: a corpus of %d bytes", ErrBadRequest, q.Bytes)
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(q.Bytes)+1))
	if err != nil {
		return nil, fmt.Errorf("datanet: read the corpus: %w", err)
	}
	if err := Check(q, b); err != nil {
		return nil, err
	}
	return b, nil
}

// MaxServing bounds the corpora a server sends at once (each is held in
// memory while it is sent); a request past it is refused as busy, and the
// daemon declines the job until a later offer.
const MaxServing = 4

// ErrBusy is the refusal of a server sending MaxServing corpora already.
var ErrBusy = errors.New("the coordinator is sending as many corpora as it can at once; retry later")

// Source returns the corpus root of n bytes, or ok false when it has none.
type Source func(root [32]byte, n int) (b []byte, ok bool, err error)

// Serve answers corpus requests on h from src, to the peers allow admits
// (nil: every peer). Events go to log (nil: nowhere).
func Serve(h host.Host, src Source, allow func(peer.ID) bool, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	slots := make(chan struct{}, MaxServing)
	h.SetStreamHandler(protocol.ID(Protocol), func(s network.Stream) {
		defer s.Close()
		s.SetDeadline(time.Now().Add(Timeout))
		from := s.Conn().RemotePeer()
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			log.Warn("corpus request refused", "peer", from.String(), "err", "busy")
			refuse(s, statusRefused, ErrBusy.Error())
			return
		}
		buf := make([]byte, RequestLen+1)
		n, err := io.ReadFull(s, buf[:RequestLen])
		if err != nil {
			log.Warn("corpus request refused", "peer", from.String(), "err", err)
			s.Reset()
			return
		}
		q, err := DecodeRequest(buf[:n])
		if err != nil {
			log.Warn("corpus request refused", "peer", from.String(), "err", err)
			refuse(s, statusRefused, err.Error())
			return
		}
		root := hex.EncodeToString(q.Root[:8])
		if allow != nil && !allow(from) {
			log.Warn("corpus request refused", "peer", from.String(), "root", root, "err", "not a registered solver or verifier")
			refuse(s, statusRefused, "corpora are served to the coordinator's registered solvers and verifiers; say hello first")
			return
		}
		b, ok, err := src(q.Root, q.Bytes)
		if err != nil || !ok {
			log.Warn("corpus request refused", "peer", from.String(), "root", root, "bytes", q.Bytes, "err", err)
			refuse(s, statusMissing, fmt.Sprintf("no corpus of %d bytes with root %x is stored here; the client uploads it with beluga job upload", q.Bytes, q.Root))
			return
		}
		if _, err := s.Write([]byte{statusOK}); err == nil {
			_, err = s.Write(b)
			if err != nil {
				log.Warn("corpus not sent", "peer", from.String(), "root", root, "err", err)
				return
			}
		}
		log.Info(EventServed, "peer", from.String(), "root", root, "bytes", len(b))
	})
}

// EventServed is logged when a corpus has been sent to a peer.
const EventServed = "corpus served"

// EventFetched is logged when a corpus has been fetched, checked and kept.
const EventFetched = "corpus fetched"

func refuse(s network.Stream, status byte, msg string) {
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	s.Write(append([]byte{status}, msg...))
}

// Fetch asks p for the corpus q names and returns it, checked (Check).
func Fetch(ctx context.Context, h host.Host, p peer.ID, q Request) ([]byte, error) {
	if q.Bytes < 1 || q.Bytes > MaxBytes {
		return nil, fmt.Errorf("%w: a corpus of %d bytes, want 1 … %d", ErrBadRequest, q.Bytes, MaxBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "beluga"), p, protocol.ID(Protocol))
	if err != nil {
		return nil, fmt.Errorf("datanet: open a stream to the coordinator: %w", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if _, err := s.Write(q.Encode()); err != nil {
		return nil, fmt.Errorf("datanet: send the request: %w", err)
	}
	s.CloseWrite()
	b, err := ReadAnswer(s, q)
	if err != nil {
		s.Reset()
	}
	return b, err
}

// Cache keeps fetched corpora in Dir, one file per root, and fetches the
// ones it lacks from Peer (the coordinator) over Host. A fetch runs under
// Ctx (nil: its own Timeout only), not its caller's context: a caller that
// stops waiting leaves it to finish into the cache, so that a corpus
// slower to arrive than one assignment's answer is there for the next.
// One fetch runs per corpus however many callers wait for it. Use a Cache
// by pointer; its zero in-flight table is ready.
type Cache struct {
	Dir  string
	Host host.Host
	Peer peer.ID
	Log  *slog.Logger
	Ctx  context.Context

	mu       sync.Mutex
	inflight map[Request]*fetching
}

// fetching is a fetch in flight: done is closed when path or err is set.
type fetching struct {
	done chan struct{}
	path string
	err  error
}

// ErrOnItsWay: the caller stopped waiting while the corpus was being
// fetched; the fetch goes on and keeps it.
var ErrOnItsWay = errors.New("datanet: the corpus is still on its way from the coordinator; it is kept when it arrives")

// File returns the path of a file in the cache that holds the corpus q,
// fetching it first if the cache lacks it (or holds other bytes under its
// name). Only checked bytes are written, atomically. If ctx ends first,
// the error wraps ErrOnItsWay.
func (c *Cache) File(ctx context.Context, q Request) (string, error) {
	path := filepath.Join(c.Dir, hex.EncodeToString(q.Root[:]))
	if b, err := os.ReadFile(path); err == nil {
		if Check(q, b) == nil {
			return path, nil
		}
		os.Remove(path)
	}
	c.mu.Lock()
	f := c.inflight[q]
	if f == nil {
		f = &fetching{done: make(chan struct{})}
		if c.inflight == nil {
			c.inflight = map[Request]*fetching{}
		}
		c.inflight[q] = f
		base := c.Ctx
		if base == nil {
			base = context.Background()
		}
		go func() {
			f.path, f.err = c.fetch(base, q, path)
			c.mu.Lock()
			delete(c.inflight, q)
			c.mu.Unlock()
			close(f.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.path, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("%w (%w)", ErrOnItsWay, ctx.Err())
	}
}

// fetch fetches q and writes it to path.
func (c *Cache) fetch(ctx context.Context, q Request, path string) (string, error) {
	start := time.Now()
	b, err := Fetch(ctx, c.Host, c.Peer, q)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(c.Dir, ".fetch-*")
	if err != nil {
		return "", err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("datanet: keep the corpus: %w", err)
	}
	if c.Log != nil {
		c.Log.Info(EventFetched, "root", hex.EncodeToString(q.Root[:8]), "bytes", len(b), "ms", time.Since(start).Milliseconds())
	}
	return path, nil
}

// LoadData loads a job's data as model.LoadData does from opts; when that
// fails for a GPT whose source is "text" (no --text file, or one with
// other bytes) and c is set, it takes the corpus from the cache, fetching
// it from the coordinator as needed, and loads the job's data from there.
func LoadData(ctx context.Context, c *Cache, s *spec.Spec, opts model.DataOptions) (*model.Data, error) {
	data, err := model.LoadData(s, opts)
	if err == nil || c == nil || !s.IsGPT() || s.Data.Source != spec.SourceText || s.Data.Text == nil {
		return data, err
	}
	root, perr := ParseRoot(s.Data.Text.Root)
	if perr != nil {
		return nil, perr
	}
	path, ferr := c.File(ctx, Request{Root: root, Bytes: s.Data.Text.Bytes})
	if ferr != nil {
		return nil, fmt.Errorf("%w; and fetching it from the coordinator: %w", err, ferr)
	}
	opts.TextFile = path
	return model.LoadData(s, opts)
}
