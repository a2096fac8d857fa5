package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/beluga-compute/beluga/internal/kv"
)

// Badger is the durable ledger on a badger database with synchronous
// writes. One writer goroutine applies every change: it merges the batches
// of concurrent callers into one badger transaction and one fsync (group
// commit), and, being alone, never meets a write conflict on hot accounts.
// Reads run concurrently on badger snapshots and see only committed state.
//
// Key layout (the first byte names the table; integers are big-endian):
//
//	'a' id                → account record (fixed fields and balances)
//	't' id                → journal sequence number of the transfer
//	'j' seq               → journal entry: transfer or expiry record
//	'i' account seq       → (empty) journal entry seq moves money of account
//	'p' id                → status of a pending transfer
//	'x' expiresAt id      → (empty) unresolved pending transfer with a deadline
//	'm'                   → meta: last sequence number and commit timestamp
//
// Records are only ever added, except balances, pending statuses, meta and
// the 'x' index, which are derived state that a journal replay recomputes.
type Badger struct {
	db  *badger.DB
	now func() time.Time
	// txnUnits bounds the transfers, expiries and accounts written in one
	// badger transaction, well inside badger's ErrTxnTooBig limits.
	txnUnits int

	reqs chan *request
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the writer has stopped

	mu     sync.RWMutex // shared by readers, exclusive in Close
	closed bool

	// commits counts badger transactions committed (tests and benchmarks
	// read it to see group commit and batch splitting at work).
	commits atomic.Int64

	// Owned by the writer goroutine.
	meta      meta
	deadlines deadlineHeap
	failed    error
}

// Budget per unit (one transfer, expiry or account) of a badger
// transaction: at most 8 entries (journal, transfer index, two statement
// index keys, two accounts, pending status, deadline index) and at most
// 1 KiB by badger's size estimate.
const (
	entriesPerUnit = 8
	bytesPerUnit   = 1024
)

var (
	keyMeta  = []byte{'m'}
	errNoDir = errors.New("ledger: OpenBadger needs a directory, or WithInMemory")
)

// OpenBadger opens (or creates) the ledger stored in dir. Every commit is
// fsynced before the call that made it returns. Only one process may open
// a directory at a time.
func OpenBadger(dir string, opts ...Option) (*Badger, error) {
	c := newConfig(opts)
	if dir == "" && !c.inMemory {
		return nil, errNoDir
	}
	bo := badger.DefaultOptions(dir).WithLoggingLevel(badger.WARNING)
	if c.inMemory {
		bo = badger.DefaultOptions("").WithLoggingLevel(badger.WARNING).
			WithMemTableSize(32 << 20).WithBlockCacheSize(8 << 20)
	}
	if c.badgerOpts != nil {
		bo = c.badgerOpts(bo)
	}
	bo = bo.WithInMemory(c.inMemory).WithSyncWrites(true).WithDetectConflicts(false)
	db, err := kv.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("ledger: open badger at %q: %w", dir, err)
	}
	b := &Badger{
		db:       db,
		now:      c.now,
		txnUnits: int(min(db.MaxBatchCount()/entriesPerUnit, db.MaxBatchSize()/bytesPerUnit) * 3 / 4),
		reqs:     make(chan *request, 256),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if b.txnUnits < MaxChainTransfers {
		db.Close()
		return nil, fmt.Errorf("ledger: badger memtable too small: %d transfers per transaction, need %d", b.txnUnits, MaxChainTransfers)
	}
	if err := b.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: open %q: %w", dir, err)
	}
	go b.run()
	return b, nil
}

// load reads the meta record, checks it against the journal and rebuilds
// the deadline heap from the 'x' index.
func (b *Badger) load() error {
	return b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyMeta)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			b.meta = meta{}
		case err != nil:
			return err
		default:
			if err := item.Value(func(v []byte) (err error) { b.meta, err = decodeMeta(v); return err }); err != nil {
				return err
			}
		}
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte{'j'}})
		defer it.Close()
		var last uint64
		if it.Seek(journalKey(^uint64(0))); it.Valid() {
			if last, err = seqFromKey(it.Item().Key(), 1); err != nil {
				return err
			}
		}
		if last != b.meta.lastSeq {
			return fmt.Errorf("%w: meta says the journal ends at %d, it ends at %d", ErrCorrupt, b.meta.lastSeq, last)
		}
		xi := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'x'}})
		defer xi.Close()
		for xi.Rewind(); xi.Valid(); xi.Next() {
			k := xi.Item().Key()
			if len(k) != 1+8+16 {
				return fmt.Errorf("%w: deadline key %x", ErrCorrupt, k)
			}
			d := deadline{at: int64(binary.BigEndian.Uint64(k[1:]))}
			copy(d.id[:], k[9:])
			b.deadlines.push(d)
		}
		return nil
	})
}

func accountKey(id AccountID) []byte   { return append([]byte{'a'}, id[:]...) }
func transferKey(id TransferID) []byte { return append([]byte{'t'}, id[:]...) }
func pendingKey(id TransferID) []byte  { return append([]byte{'p'}, id[:]...) }
func journalKey(seq uint64) []byte     { return binary.BigEndian.AppendUint64([]byte{'j'}, seq) }
func indexKey(id AccountID, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte{'i'}, id[:]...), seq)
}
func deadlineKey(at int64, id TransferID) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{'x'}, uint64(at)), id[:]...)
}

func seqFromKey(k []byte, off int) (uint64, error) {
	if len(k) != off+8 {
		return 0, fmt.Errorf("%w: key %x", ErrCorrupt, k)
	}
	return binary.BigEndian.Uint64(k[off:]), nil
}

// Close stops the writer, failing queued requests with ErrClosed, waits for
// readers, and closes the database.
func (b *Badger) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	b.closed = true
	close(b.quit)
	<-b.done
	return b.db.Close()
}

// view runs fn on a consistent snapshot of committed state.
func (b *Badger) view(fn func(r reader) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	return b.db.View(func(txn *badger.Txn) error { return fn(reader{txn}) })
}

// Account implements Ledger.
func (b *Badger) Account(ctx context.Context, id AccountID) (a Account, err error) {
	err = b.view(func(r reader) error {
		var ok bool
		a, ok, err = r.account(id)
		if err == nil && !ok {
			err = ErrAccountNotFound
		}
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("account %s: %w", id, err)
	}
	return a, nil
}

// Transfer implements Ledger.
func (b *Badger) Transfer(ctx context.Context, id TransferID) (t Transfer, err error) {
	err = b.view(func(r reader) error { t, err = r.Transfer(ctx, id); return err })
	return t, err
}

// Pending implements Ledger.
func (b *Badger) Pending(ctx context.Context, id TransferID) (p PendingStatus, err error) {
	err = b.view(func(r reader) error {
		var ok bool
		if p, ok, err = r.pending(id); err != nil || ok {
			return err
		}
		if _, err := r.Transfer(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("transfer %s: %w", id, ErrNotPending)
	})
	return p, err
}

// AccountTransfers implements Ledger.
func (b *Badger) AccountTransfers(ctx context.Context, id AccountID, after TransferID, limit int) (ts []Transfer, err error) {
	if limit <= 0 || limit > MaxPageTransfers {
		limit = MaxPageTransfers
	}
	err = b.view(func(r reader) error {
		if _, ok, err := r.account(id); err != nil || !ok {
			if err == nil {
				err = ErrAccountNotFound
			}
			return fmt.Errorf("account %s: %w", id, err)
		}
		var from uint64 = 1
		if !after.IsZero() {
			seq, ok, err := r.transferSeq(after)
			if err != nil || !ok {
				if err == nil {
					err = ErrTransferNotFound
				}
				return fmt.Errorf("cursor %s: %w", after, err)
			}
			from = seq + 1
		}
		prefix := append([]byte{'i'}, id[:]...)
		it := r.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(indexKey(id, from)); it.Valid() && len(ts) < limit; it.Next() {
			seq, err := seqFromKey(it.Item().Key(), 17)
			if err != nil {
				return err
			}
			e, err := r.entry(seq)
			if err != nil {
				return err
			}
			if e.Kind != EntryTransfer {
				return fmt.Errorf("%w: statement index points at expiry %d", ErrCorrupt, seq)
			}
			ts = append(ts, e.Transfer)
		}
		return ctx.Err()
	})
	return ts, err
}

// ScanAccounts implements Auditor. Each Scan call reads its own snapshot;
// Verify reads one snapshot for all of them.
func (b *Badger) ScanAccounts(ctx context.Context, fn func(Account) error) error {
	return b.view(func(r reader) error { return r.ScanAccounts(ctx, fn) })
}

// ScanJournal implements Auditor.
func (b *Badger) ScanJournal(ctx context.Context, afterSeq uint64, fn func(Entry) error) error {
	return b.view(func(r reader) error { return r.ScanJournal(ctx, afterSeq, fn) })
}

// ScanPending implements Auditor.
func (b *Badger) ScanPending(ctx context.Context, fn func(PendingStatus) error) error {
	return b.view(func(r reader) error { return r.ScanPending(ctx, fn) })
}

// Verify runs CheckInvariants on one consistent snapshot, so it may run
// while writers are busy.
func (b *Badger) Verify(ctx context.Context) error {
	return b.view(func(r reader) error { return CheckInvariants(ctx, r) })
}

// reader reads committed state from one badger transaction. It implements
// Auditor.
type reader struct{ txn *badger.Txn }

// get calls fn with the value of key; ok is false if the key is absent.
func (r reader) get(key []byte, fn func([]byte) error) (ok bool, err error) {
	item, err := r.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(fn)
}

func (r reader) account(id AccountID) (a Account, ok bool, err error) {
	ok, err = r.get(accountKey(id), func(v []byte) (err error) {
		if a, err = decodeAccount(v); err == nil && a.ID != id {
			err = fmt.Errorf("%w: account %s stored under %s", ErrCorrupt, a.ID, id)
		}
		return err
	})
	return a, ok, err
}

func (r reader) transferSeq(id TransferID) (seq uint64, ok bool, err error) {
	ok, err = r.get(transferKey(id), func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("%w: transfer index %s", ErrCorrupt, id)
		}
		seq = binary.BigEndian.Uint64(v)
		return nil
	})
	return seq, ok, err
}

func (r reader) entry(seq uint64) (e Entry, err error) {
	ok, err := r.get(journalKey(seq), func(v []byte) (err error) {
		if e, err = decodeEntry(v); err == nil && e.Seq != seq {
			err = fmt.Errorf("%w: journal entry %d stored under %d", ErrCorrupt, e.Seq, seq)
		}
		return err
	})
	if err == nil && !ok {
		err = fmt.Errorf("%w: journal entry %d missing", ErrCorrupt, seq)
	}
	return e, err
}

func (r reader) transfer(id TransferID) (Transfer, bool, error) {
	seq, ok, err := r.transferSeq(id)
	if err != nil || !ok {
		return Transfer{}, false, err
	}
	e, err := r.entry(seq)
	if err == nil && (e.Kind != EntryTransfer || e.Transfer.ID != id) {
		err = fmt.Errorf("%w: transfer index %s points at journal entry %d", ErrCorrupt, id, seq)
	}
	return e.Transfer, err == nil, err
}

func (r reader) pending(id TransferID) (p PendingStatus, ok bool, err error) {
	ok, err = r.get(pendingKey(id), func(v []byte) (err error) {
		if p, err = decodePending(v); err == nil && p.ID != id {
			err = fmt.Errorf("%w: pending status %s stored under %s", ErrCorrupt, p.ID, id)
		}
		return err
	})
	return p, ok, err
}

func (r reader) Transfer(ctx context.Context, id TransferID) (Transfer, error) {
	t, ok, err := r.transfer(id)
	if err == nil && !ok {
		err = ErrTransferNotFound
	}
	if err != nil {
		return Transfer{}, fmt.Errorf("transfer %s: %w", id, err)
	}
	return t, nil
}

// scan calls fn with the value of every key under prefix, in key order.
func (r reader) scan(ctx context.Context, prefix, start []byte, fn func(k, v []byte) error) error {
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
	defer it.Close()
	n := 0
	for it.Seek(start); it.Valid(); it.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		item := it.Item()
		if err := item.Value(func(v []byte) error { return fn(item.Key(), v) }); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (r reader) ScanAccounts(ctx context.Context, fn func(Account) error) error {
	return r.scan(ctx, []byte{'a'}, []byte{'a'}, func(k, v []byte) error {
		a, err := decodeAccount(v)
		if err != nil {
			return err
		}
		if string(k[1:]) != string(a.ID[:]) {
			return fmt.Errorf("%w: account %s stored under %x", ErrCorrupt, a.ID, k)
		}
		return fn(a)
	})
}

func (r reader) ScanJournal(ctx context.Context, afterSeq uint64, fn func(Entry) error) error {
	if afterSeq == ^uint64(0) {
		return nil
	}
	return r.scan(ctx, []byte{'j'}, journalKey(afterSeq+1), func(k, v []byte) error {
		seq, err := seqFromKey(k, 1)
		if err != nil {
			return err
		}
		e, err := decodeEntry(v)
		if err != nil {
			return err
		}
		if e.Seq != seq {
			return fmt.Errorf("%w: journal entry %d stored under %d", ErrCorrupt, e.Seq, seq)
		}
		return fn(e)
	})
}

func (r reader) ScanPending(ctx context.Context, fn func(PendingStatus) error) error {
	return r.scan(ctx, []byte{'p'}, []byte{'p'}, func(k, v []byte) error {
		p, err := decodePending(v)
		if err != nil {
			return err
		}
		if string(k[1:]) != string(p.ID[:]) {
			return fmt.Errorf("%w: pending status %s stored under %x", ErrCorrupt, p.ID, k)
		}
		return fn(p)
	})
}
