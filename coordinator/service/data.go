package service

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/beluga-compute/beluga/spec/dataset"
)

// MaxTextUpload bounds a client's text corpus (64 MiB): what the
// coordinator keeps for the daemons that train and audit on it.
const MaxTextUpload = 64 << 20

// textPart is the size of the pieces a corpus is stored in: each piece
// is its own write, so a corpus fits any table (badger bounds one
// transaction by its memtable).
const textPart = 512 << 10

// Text corpora are stored content-addressed, under their text root:
//
//	data/text/<root>/<i>  piece i of the corpus
//	data/text/<root>      le64 size, written last: the corpus exists
//	                      once it is there
func textKey(root [32]byte) string { return "data/text/" + hex.EncodeToString(root[:]) }

// PutText commits to a client's corpus b (dataset.NewText) and keeps it
// under its root, where the daemons fetch it. It is idempotent: the same
// bytes give the same root and are stored once. It refuses an empty
// corpus and one over MaxTextUpload (ErrInvalid) and stores nothing then.
func (s *Service) PutText(b []byte) (root [32]byte, n int, err error) {
	if len(b) > MaxTextUpload {
		return root, 0, fmt.Errorf("%w: the corpus is %d bytes, more than the limit of %d (64 MiB)", ErrInvalid, len(b), MaxTextUpload)
	}
	t, err := dataset.NewText(b)
	if err != nil {
		return root, 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	root, n = t.Root(), t.Len()
	key := textKey(root)
	if _, ok, err := s.store.GetRaw(key); err != nil || ok {
		return root, n, err
	}
	for i := 0; i*textPart < n; i++ {
		if err := s.store.PutRaw(fmt.Sprintf("%s/%d", key, i), b[i*textPart:min((i+1)*textPart, n)]); err != nil {
			return root, 0, fmt.Errorf("store the corpus: %w", err)
		}
	}
	if err := s.store.PutRaw(key, binary.LittleEndian.AppendUint64(nil, uint64(n))); err != nil {
		return root, 0, fmt.Errorf("store the corpus: %w", err)
	}
	return root, n, nil
}

// TextSize returns the size of the stored corpus root, or ok false when
// none is stored.
func (s *Service) TextSize(root [32]byte) (n int, ok bool, err error) {
	v, ok, err := s.store.GetRaw(textKey(root))
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("corpus %x: a size record of %d bytes", root[:8], len(v))
	}
	return int(binary.LittleEndian.Uint64(v)), true, nil
}

// errTextDamaged: a stored corpus' pieces do not add up to its size.
var errTextDamaged = errors.New("service: a stored corpus is damaged")

// Text returns the stored corpus root if it has n bytes; ok false when no
// such corpus is stored.
func (s *Service) Text(root [32]byte, n int) (b []byte, ok bool, err error) {
	size, ok, err := s.TextSize(root)
	if err != nil || !ok || size != n {
		return nil, false, err
	}
	key := textKey(root)
	b = make([]byte, 0, n)
	for i := 0; len(b) < n; i++ {
		p, ok, err := s.store.GetRaw(fmt.Sprintf("%s/%d", key, i))
		if err != nil {
			return nil, false, err
		}
		if !ok || len(p) == 0 || len(b)+len(p) > n {
			return nil, false, fmt.Errorf("%w: corpus %x piece %d", errTextDamaged, root[:8], i)
		}
		b = append(b, p...)
	}
	return b, true, nil
}
