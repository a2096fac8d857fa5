package ledger

import (
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// request is one caller's batch, waiting for the writer.
type request struct {
	accounts  []Account
	transfers []Transfer
	expire    bool // an Expire call: no items, wants the expired IDs

	results []Result
	expired []TransferID
	err     error
	done    chan struct{}
}

func (q *request) units() int { return len(q.accounts) + len(q.transfers) }

// CreateAccounts implements Ledger.
func (b *Badger) CreateAccounts(ctx context.Context, accts []Account) ([]Result, error) {
	if len(accts) == 0 {
		return nil, nil
	}
	// The writer reads the batch after a cancelled caller has returned:
	// give it its own copy.
	q, err := b.do(ctx, &request{accounts: slices.Clone(accts)})
	if err != nil {
		return nil, fmt.Errorf("create accounts: %w", err)
	}
	return q.results, nil
}

// Submit implements Ledger.
func (b *Badger) Submit(ctx context.Context, ts []Transfer) ([]Result, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	q, err := b.do(ctx, &request{transfers: slices.Clone(ts)})
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	return q.results, nil
}

// Expire implements Ledger.
func (b *Badger) Expire(ctx context.Context) ([]TransferID, error) {
	q, err := b.do(ctx, &request{expire: true})
	if err != nil {
		return nil, fmt.Errorf("expire: %w", err)
	}
	return q.expired, nil
}

// do hands q to the writer and waits for it. If ctx ends first, q may
// still be applied.
func (b *Badger) do(ctx context.Context, q *request) (*request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.done = make(chan struct{})
	select {
	case b.reqs <- q:
	case <-b.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-q.done:
	case <-b.done:
		// The writer stopped; it may have finished q just before.
		select {
		case <-q.done:
		default:
			return nil, ErrClosed
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if q.err != nil {
		return nil, q.err
	}
	return q, nil
}

// run is the writer goroutine: it takes every queued request (up to one
// transaction's worth), applies them in one commit, and answers them.
func (b *Badger) run() {
	defer close(b.done)
	for {
		var group []*request
		select {
		case q := <-b.reqs:
			group = append(group, q)
		case <-b.quit:
			b.drain()
			return
		}
		units := group[0].units()
	more:
		for units < b.txnUnits {
			select {
			case q := <-b.reqs:
				group = append(group, q)
				units += q.units()
			default:
				break more
			}
		}
		b.commitGroup(group)
	}
}

// drain fails every queued request after Close.
func (b *Badger) drain() {
	for {
		select {
		case q := <-b.reqs:
			q.err = ErrClosed
			close(q.done)
		default:
			return
		}
	}
}

// commitGroup applies a group of requests: first the expiries due at the
// group's timestamp, then each request's items in order. The work is split
// across badger transactions only between chains, so a chain is always
// atomic; every request is answered after its last transaction commits.
func (b *Badger) commitGroup(group []*request) {
	err := b.failed
	if err == nil {
		err = b.applyGroup(group)
		if err != nil {
			b.failed = fmt.Errorf("%w: %w", ErrFailed, err)
			err = b.failed
		}
	}
	for _, q := range group {
		if err != nil {
			q.err, q.results, q.expired = err, nil, nil
		}
		close(q.done)
	}
}

func (b *Badger) applyGroup(group []*request) error {
	now := commitTime(b.now, b.meta.lastTS)
	w := b.newTxn(now)
	defer func() { w.txn.Discard() }()
	// next commits w and starts a new transaction if n more units do not
	// fit in it.
	next := func(n int) error {
		if w.units+n <= b.txnUnits {
			return nil
		}
		if err := w.commit(); err != nil {
			return err
		}
		w.txn.Discard()
		w = b.newTxn(now)
		return nil
	}

	var expired []TransferID
	for len(b.deadlines) > 0 && b.deadlines[0].at <= now {
		if err := next(1); err != nil {
			return err
		}
		d := b.deadlines.pop()
		ok, err := w.expire(d.id)
		if err != nil {
			return err
		}
		if ok {
			expired = append(expired, d.id)
		}
	}
	for _, q := range group {
		switch {
		case q.expire:
			// Answered below, once the expiries have committed.
		case q.accounts != nil:
			q.results = make([]Result, len(q.accounts))
			for i := range q.accounts {
				if err := next(1); err != nil {
					return err
				}
				r, err := w.createAccount(q.accounts[i])
				if err != nil {
					return err
				}
				q.results[i] = r
			}
		default:
			q.results = make([]Result, len(q.transfers))
			for _, s := range chains(q.transfers) {
				if err := next(s.hi - s.lo); err != nil {
					return err
				}
				if err := w.applyChain(q.transfers[s.lo:s.hi], q.results[s.lo:s.hi], s.err); err != nil {
					return err
				}
			}
		}
	}
	if err := w.commit(); err != nil {
		return err
	}
	for _, q := range group {
		if q.expire {
			q.expired = expired
		}
	}
	return nil
}

// txnWriter accumulates one badger transaction. State is layered: reads go
// through the current chain's changes, then this transaction's, then the
// database; a chain's changes join the transaction only if the whole chain
// succeeds.
type txnWriter struct {
	b     *Badger
	txn   *badger.Txn
	now   int64
	seq   uint64 // last sequence number assigned in this transaction
	units int

	// This transaction's state: accounts read or changed (nil: absent),
	// which of them changed, new transfers, pending statuses read or
	// changed, new journal entries.
	accts    map[AccountID]*Account
	dirty    map[AccountID]bool
	xfers    map[TransferID]Transfer
	read     map[TransferID]*Transfer // transfers read from the database (nil: absent)
	pend     map[TransferID]PendingStatus
	pendDirt map[TransferID]bool
	entries  []Entry

	c chainLayer
}

// chainLayer holds the changes of the chain being applied.
type chainLayer struct {
	accts   map[AccountID]Account
	xfers   map[TransferID]Transfer
	pend    map[TransferID]PendingStatus
	entries []Entry
	seq     uint64
}

func (b *Badger) newTxn(now int64) *txnWriter {
	return &txnWriter{
		b:        b,
		txn:      b.db.NewTransaction(true),
		now:      now,
		seq:      b.meta.lastSeq,
		accts:    make(map[AccountID]*Account),
		dirty:    make(map[AccountID]bool),
		xfers:    make(map[TransferID]Transfer),
		read:     make(map[TransferID]*Transfer),
		pend:     make(map[TransferID]PendingStatus),
		pendDirt: make(map[TransferID]bool),
		c: chainLayer{
			accts: make(map[AccountID]Account),
			xfers: make(map[TransferID]Transfer),
			pend:  make(map[TransferID]PendingStatus),
		},
	}
}

func (w *txnWriter) db() reader { return reader{w.txn} }

func (w *txnWriter) account(id AccountID) (*Account, error) {
	if a, ok := w.c.accts[id]; ok {
		return &a, nil
	}
	if a, ok := w.accts[id]; ok {
		if a == nil {
			return nil, nil
		}
		c := *a
		return &c, nil
	}
	a, ok, err := w.db().account(id)
	if err != nil {
		return nil, err
	}
	if !ok {
		w.accts[id] = nil
		return nil, nil
	}
	w.accts[id] = &a
	c := a
	return &c, nil
}

func (w *txnWriter) transfer(id TransferID) (*Transfer, error) {
	if t, ok := w.c.xfers[id]; ok {
		return &t, nil
	}
	if t, ok := w.xfers[id]; ok {
		return &t, nil
	}
	if t, ok := w.read[id]; ok {
		return t, nil
	}
	t, ok, err := w.db().transfer(id)
	if err != nil {
		return nil, err
	}
	if !ok {
		w.read[id] = nil
		return nil, nil
	}
	w.read[id] = &t
	return &t, nil
}

func (w *txnWriter) pending(id TransferID) (PendingStatus, error) {
	if p, ok := w.c.pend[id]; ok {
		return p, nil
	}
	if p, ok := w.pend[id]; ok {
		return p, nil
	}
	p, ok, err := w.db().pending(id)
	if err == nil && !ok {
		err = fmt.Errorf("%w: pending transfer %s has no status", ErrCorrupt, id)
	}
	if err != nil {
		return PendingStatus{}, err
	}
	w.pend[id] = p
	return p, nil
}

// createAccount creates one account directly in the transaction layer:
// accounts are not chained, and a rejected one changes nothing.
func (w *txnWriter) createAccount(a Account) (Result, error) {
	if err := checkAccount(&a); err != nil {
		return Result{Err: err}, nil
	}
	old, err := w.account(a.ID)
	if err != nil {
		return Result{}, err
	}
	if old != nil {
		if !old.sameRequest(a) {
			return Result{Err: ErrExistsDifferent}, nil
		}
		return Result{Existed: true, TimestampUnixNano: old.TimestampUnixNano}, nil
	}
	a.TimestampUnixNano = w.now
	w.accts[a.ID] = &a
	w.dirty[a.ID] = true
	w.units++
	return Result{TimestampUnixNano: w.now}, nil
}

// applyChain applies a linked chain (or a single transfer): all of it, or
// none of it. preset, if not nil, fails the chain without trying it.
func (w *txnWriter) applyChain(ts []Transfer, res []Result, preset error) error {
	w.c.reset(w.seq)
	if preset != nil {
		for i := range res {
			res[i] = Result{Err: preset}
		}
		return nil
	}
	for i := range ts {
		r, err := w.applyTransfer(ts[i])
		if err != nil {
			return err
		}
		res[i] = r
		if r.Err != nil {
			for j := range res {
				if j != i {
					res[j] = Result{Err: ErrLinkedEventFailed}
				}
			}
			return nil
		}
	}
	w.merge()
	w.units += len(ts)
	return nil
}

func (c *chainLayer) reset(seq uint64) {
	clear(c.accts)
	clear(c.xfers)
	clear(c.pend)
	c.entries = c.entries[:0]
	c.seq = seq
}

func (w *txnWriter) merge() {
	for id, a := range w.c.accts {
		w.accts[id] = &a
		w.dirty[id] = true
	}
	for id, t := range w.c.xfers {
		w.xfers[id] = t
	}
	for id, p := range w.c.pend {
		w.pend[id] = p
		w.pendDirt[id] = true
	}
	w.entries = append(w.entries, w.c.entries...)
	w.seq = w.c.seq
}

// applyTransfer checks t against the rules, in the documented order, and
// if it passes records its effects in the chain layer. The error is fatal
// (storage or corruption); a rejection is Result.Err.
func (w *txnWriter) applyTransfer(t Transfer) (Result, error) {
	if err := checkTransfer(&t, true); err != nil {
		return Result{Err: err}, nil
	}
	old, err := w.transfer(t.ID)
	if err != nil {
		return Result{}, err
	}
	if old != nil {
		if !old.sameRequest(t) {
			return Result{Err: ErrExistsDifferent}, nil
		}
		return Result{Existed: true, Seq: old.Seq, TimestampUnixNano: old.TimestampUnixNano}, nil
	}
	dr, err := w.account(t.DebitAccountID)
	if err != nil {
		return Result{}, err
	}
	cr, err := w.account(t.CreditAccountID)
	if err != nil {
		return Result{}, err
	}
	switch {
	case dr == nil || cr == nil:
		return Result{Err: ErrAccountNotFound}, nil
	case dr.Ledger != t.Ledger || cr.Ledger != t.Ledger:
		return Result{Err: ErrLedgerMismatch}, nil
	}

	var pendingAmount int64
	var ps PendingStatus
	if t.Flags&(PostPending|VoidPending) != 0 {
		p, err := w.transfer(t.PendingID)
		if err != nil {
			return Result{}, err
		}
		if p == nil {
			return Result{Err: ErrPendingNotFound}, nil
		}
		if p.Flags&Pending == 0 {
			return Result{Err: ErrNotPending}, nil
		}
		if p.DebitAccountID != t.DebitAccountID || p.CreditAccountID != t.CreditAccountID || p.Ledger != t.Ledger {
			return Result{Err: ErrPendingMismatch}, nil
		}
		if ps, err = w.pending(p.ID); err != nil {
			return Result{}, err
		}
		if err := resolvedErr(ps.State); err != nil {
			return Result{Err: err}, nil
		}
		switch {
		case t.Flags&PostPending != 0 && t.AmountMicroUSD > p.AmountMicroUSD:
			return Result{Err: ErrExceedsPendingAmount}, nil
		case t.Flags&VoidPending != 0 && t.AmountMicroUSD != p.AmountMicroUSD:
			return Result{Err: ErrPendingAmountMismatch}, nil
		}
		pendingAmount = p.AmountMicroUSD
	}
	var deadline int64
	if t.Flags&Pending != 0 {
		if deadline, err = expiresAt(w.now, t.TimeoutSec); err != nil {
			return Result{Err: err}, nil
		}
	}
	d, c, err := applyBalances(*dr, *cr, t.Flags, t.AmountMicroUSD, pendingAmount)
	if err == errNegative {
		return Result{}, fmt.Errorf("transfer %s: %w", t.ID, err)
	}
	if err != nil {
		return Result{Err: err}, nil
	}

	// Apply.
	w.c.seq++
	t.Seq, t.TimestampUnixNano = w.c.seq, w.now
	dr.Balances, cr.Balances = d, c
	w.c.accts[dr.ID], w.c.accts[cr.ID] = *dr, *cr
	w.c.xfers[t.ID] = t
	w.c.entries = append(w.c.entries, Entry{Kind: EntryTransfer, Seq: t.Seq, TimestampUnixNano: t.TimestampUnixNano, Transfer: t})
	switch {
	case t.Flags&Pending != 0:
		w.c.pend[t.ID] = PendingStatus{ID: t.ID, State: StatePending, ExpiresAtUnixNano: deadline}
	case t.Flags&PostPending != 0:
		ps.State, ps.ResolvedBy, ps.ResolvedSeq, ps.PostedMicroUSD = StatePosted, t.ID, t.Seq, t.AmountMicroUSD
		w.c.pend[ps.ID] = ps
	case t.Flags&VoidPending != 0:
		ps.State, ps.ResolvedBy, ps.ResolvedSeq = StateVoided, t.ID, t.Seq
		w.c.pend[ps.ID] = ps
	}
	return Result{Seq: t.Seq, TimestampUnixNano: t.TimestampUnixNano}, nil
}

// resolvedErr is the rejection for resolving a pending transfer in state s.
func resolvedErr(s PendingState) error {
	switch s {
	case StatePosted:
		return ErrAlreadyPosted
	case StateVoided:
		return ErrAlreadyVoided
	case StateExpired:
		return ErrPendingExpired
	}
	return nil
}

// expire releases the reservation of pending transfer id if it is still
// held, recording an expiry entry. Its deadline has passed.
func (w *txnWriter) expire(id TransferID) (bool, error) {
	ps, err := w.pending(id)
	if err != nil || ps.State != StatePending {
		return false, err
	}
	p, err := w.transfer(id)
	if err == nil && p == nil {
		err = fmt.Errorf("%w: pending status without transfer %s", ErrCorrupt, id)
	}
	if err != nil {
		return false, err
	}
	dr, err := w.account(p.DebitAccountID)
	if err != nil {
		return false, err
	}
	cr, err := w.account(p.CreditAccountID)
	if err != nil {
		return false, err
	}
	if dr == nil || cr == nil {
		return false, fmt.Errorf("%w: pending transfer %s moves money of a missing account", ErrCorrupt, id)
	}
	d, c, err := applyBalances(*dr, *cr, VoidPending, 0, p.AmountMicroUSD)
	if err != nil {
		return false, fmt.Errorf("expire %s: %w", id, err)
	}
	w.c.reset(w.seq)
	w.c.seq++
	dr.Balances, cr.Balances = d, c
	w.c.accts[dr.ID], w.c.accts[cr.ID] = *dr, *cr
	ps.State, ps.ResolvedSeq = StateExpired, w.c.seq
	w.c.pend[id] = ps
	w.c.entries = append(w.c.entries, Entry{Kind: EntryExpiry, Seq: w.c.seq, TimestampUnixNano: w.now, ExpiredID: id})
	w.merge()
	w.units++
	return true, nil
}

// commit writes the transaction's changes and commits them, fsynced. Only
// then does the in-memory state (meta, deadline heap) move forward.
func (w *txnWriter) commit() error {
	if len(w.entries) == 0 && len(w.dirty) == 0 {
		return nil
	}
	set := func(k, v []byte) error { return w.txn.Set(k, v) }
	var err error
	for id := range w.dirty {
		if err == nil {
			err = set(accountKey(id), encodeAccount(w.accts[id]))
		}
	}
	for i := range w.entries {
		e := &w.entries[i]
		if err == nil {
			err = set(journalKey(e.Seq), encodeEntry(e))
		}
		if e.Kind == EntryTransfer && err == nil {
			t := &e.Transfer
			err = set(transferKey(t.ID), binary.BigEndian.AppendUint64(nil, t.Seq))
			if err == nil {
				err = set(indexKey(t.DebitAccountID, t.Seq), nil)
			}
			if err == nil {
				err = set(indexKey(t.CreditAccountID, t.Seq), nil)
			}
		}
	}
	var deadlines []deadline
	for id := range w.pendDirt {
		p := w.pend[id]
		if err == nil {
			err = set(pendingKey(id), encodePending(&p))
		}
		if p.ExpiresAtUnixNano == 0 || err != nil {
			continue
		}
		if p.State == StatePending {
			err = set(deadlineKey(p.ExpiresAtUnixNano, id), nil)
			deadlines = append(deadlines, deadline{at: p.ExpiresAtUnixNano, id: id})
		} else {
			err = w.txn.Delete(deadlineKey(p.ExpiresAtUnixNano, id))
		}
	}
	m := meta{lastSeq: w.seq, lastTS: w.now}
	if err == nil {
		err = set(keyMeta, encodeMeta(m))
	}
	if err == nil {
		err = w.txn.Commit()
	}
	if err != nil {
		return fmt.Errorf("commit through sequence %d: %w", w.seq, err)
	}
	w.b.meta = m
	w.b.commits.Add(1)
	for _, d := range deadlines {
		w.b.deadlines.push(d)
	}
	return nil
}

// deadline is an entry of the expiry heap: pending transfer id expires at.
// The heap may hold transfers resolved since; expire skips those.
type deadline struct {
	at int64
	id TransferID
}

// deadlineHeap orders deadlines by time, then ID, the order expiries
// are journaled in.
type deadlineHeap []deadline

func (h deadlineHeap) Len() int { return len(h) }
func (h deadlineHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return string(h[i].id[:]) < string(h[j].id[:])
}
func (h deadlineHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)   { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}
func (h *deadlineHeap) push(d deadline) { heap.Push(h, d) }
func (h *deadlineHeap) pop() deadline   { return heap.Pop(h).(deadline) }
