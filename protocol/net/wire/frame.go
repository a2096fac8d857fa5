package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/beluga-compute/beluga/protocol/net/pb"
)

// Write writes e as one length-delimited frame.
func Write(w io.Writer, e *pb.Envelope) error {
	_, err := protodelim.MarshalTo(w, e)
	return err
}

// Read reads one frame that must hold an envelope of one of the types in
// want; the frame's length prefix is checked against the largest of their
// maxima before anything is allocated. The envelope is verified (Open).
func Read(r *bufio.Reader, want ...Type) (*Envelope, error) {
	limit := 0
	for _, t := range want {
		limit = max(limit, MaxFrame(t))
	}
	if limit == 0 {
		return nil, fmt.Errorf("%w: no expected type", ErrWrongType)
	}
	var e pb.Envelope
	tr := &trackingReader{r: r}
	if err := (protodelim.UnmarshalOptions{MaxSize: int64(limit)}).UnmarshalFrom(tr, &e); err != nil {
		var big *protodelim.SizeTooLargeError
		if errors.As(err, &big) {
			return nil, fmt.Errorf("%w: frame of %d bytes (max %d)", ErrTooLarge, big.Size, limit)
		}
		if tr.err != nil {
			// The transport failed (closed, reset, timed out): not the
			// peer's bytes being malformed.
			if errors.Is(tr.err, io.EOF) && tr.n == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("%w: %w", ErrTransport, tr.err)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return Open(&e, want...)
}

// WriteRaw writes data as a raw frame: a uvarint length and the bytes.
func WriteRaw(w io.Writer, data []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(data)))]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// ReadRaw reads a raw frame of at most limit bytes into buf (grown as
// needed) and returns it.
func ReadRaw(r *bufio.Reader, limit int, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: raw frame of %d bytes (max %d)", ErrTooLarge, n, limit)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(r, buf)
	return buf, err
}

// GuardWindow is how far behind the newest seq of a sender a message may
// arrive (out of order over different streams) and still be accepted once.
const GuardWindow = 1024

// Guard rejects envelopes whose (sender, seq) it has seen, or that are more
// than GuardWindow behind the sender's newest. It keeps a bitmap of the
// window per sender. Safe for concurrent use.
type Guard struct {
	mu    sync.Mutex
	peers map[peer.ID]*window
}

type window struct {
	top  uint64
	seen [GuardWindow / 64]uint64
}

// NewGuard returns an empty guard.
func NewGuard() *Guard { return &Guard{peers: map[peer.ID]*window{}} }

// Check accepts e once.
func (g *Guard) Check(e *Envelope) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.peers[e.Sender]
	if w == nil {
		w = &window{}
		g.peers[e.Sender] = w
	}
	switch {
	case e.Seq > w.top:
		for s := w.top + 1; s <= e.Seq && s <= w.top+GuardWindow; s++ {
			w.clear(s)
		}
		w.top = e.Seq
	case w.top-e.Seq >= GuardWindow || e.Seq == 0 && w.top >= GuardWindow:
		return fmt.Errorf("%w: seq %d from %s is too old (newest %d)", ErrReplay, e.Seq, e.Sender, w.top)
	case w.has(e.Seq):
		return fmt.Errorf("%w: seq %d from %s", ErrReplay, e.Seq, e.Sender)
	}
	if w.has(e.Seq) {
		return fmt.Errorf("%w: seq %d from %s", ErrReplay, e.Seq, e.Sender)
	}
	w.set(e.Seq)
	return nil
}

func (w *window) bit(s uint64) (int, uint64) { i := s % GuardWindow; return int(i / 64), 1 << (i % 64) }
func (w *window) has(s uint64) bool          { i, m := w.bit(s); return w.seen[i]&m != 0 }
func (w *window) set(s uint64)               { i, m := w.bit(s); w.seen[i] |= m }
func (w *window) clear(s uint64)             { i, m := w.bit(s); w.seen[i] &^= m }

// ErrTransport: reading a frame failed below the protocol (the stream was
// closed, reset or timed out), which says nothing about the peer's
// honesty.
var ErrTransport = errors.New("wire: transport error")

// trackingReader remembers the underlying reader's first error and how
// many bytes it delivered.
type trackingReader struct {
	r   *bufio.Reader
	n   int
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += n
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

func (t *trackingReader) ReadByte() (byte, error) {
	b, err := t.r.ReadByte()
	if err == nil {
		t.n++
	} else if t.err == nil {
		t.err = err
	}
	return b, err
}
