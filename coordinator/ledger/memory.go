package ledger

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/big"
	"slices"
	"sort"
	"sync"
	"time"
)

// Memory is the in-memory reference ledger: the oracle the randomized test
// runs against Badger, and a fake for other packages' tests. It shares with
// Badger only the static checks (checkAccount, checkTransfer, chains) and
// the commit clock (commitTime); the stateful rules are written out again, more plainly, with big-integer
// arithmetic, so that the two implementations check each other.
type Memory struct {
	mu     sync.Mutex
	now    func() time.Time
	closed bool
	lastTS int64

	accounts map[AccountID]Account
	journal  []Entry // journal[i].Seq == i+1
	byID     map[TransferID]int
	pending  map[TransferID]PendingStatus
	stmt     map[AccountID][]int // indexes into journal, ascending

	undo []func() // reverses the current chain's changes
}

// NewMemory returns an empty in-memory ledger. Of the options only
// WithClock applies.
func NewMemory(opts ...Option) *Memory {
	c := newConfig(opts)
	return &Memory{
		now:      c.now,
		accounts: make(map[AccountID]Account),
		byID:     make(map[TransferID]int),
		pending:  make(map[TransferID]PendingStatus),
		stmt:     make(map[AccountID][]int),
	}
}

// lock takes the mutex unless the ledger is closed.
func (m *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Close implements Ledger.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.closed = true
	return nil
}

// begin starts a write: the commit time, and the expiries due by then.
func (m *Memory) begin() (now int64, expired []TransferID) {
	now = commitTime(m.now, m.lastTS)
	var due []PendingStatus
	for _, p := range m.pending {
		if p.State == StatePending && p.ExpiresAtUnixNano != 0 && p.ExpiresAtUnixNano <= now {
			due = append(due, p)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].ExpiresAtUnixNano != due[j].ExpiresAtUnixNano {
			return due[i].ExpiresAtUnixNano < due[j].ExpiresAtUnixNano
		}
		return bytes.Compare(due[i].ID[:], due[j].ID[:]) < 0
	})
	for _, p := range due {
		t := m.journal[m.byID[p.ID]].Transfer
		dr, cr := m.accounts[t.DebitAccountID], m.accounts[t.CreditAccountID]
		dr.DebitsPendingMicroUSD -= t.AmountMicroUSD
		cr.CreditsPendingMicroUSD -= t.AmountMicroUSD
		m.accounts[dr.ID], m.accounts[cr.ID] = dr, cr
		seq := uint64(len(m.journal) + 1)
		m.journal = append(m.journal, Entry{Kind: EntryExpiry, Seq: seq, TimestampUnixNano: now, ExpiredID: p.ID})
		p.State, p.ResolvedSeq = StateExpired, seq
		m.pending[p.ID] = p
		expired = append(expired, p.ID)
	}
	if len(due) > 0 {
		m.lastTS = now
	}
	return now, expired
}

// CreateAccounts implements Ledger.
func (m *Memory) CreateAccounts(ctx context.Context, accts []Account) ([]Result, error) {
	if len(accts) == 0 {
		return nil, nil
	}
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("create accounts: %w", err)
	}
	defer m.mu.Unlock()
	now, _ := m.begin()
	res := make([]Result, len(accts))
	for i, a := range accts {
		if err := checkAccount(&a); err != nil {
			res[i].Err = err
			continue
		}
		if old, ok := m.accounts[a.ID]; ok {
			if old.sameRequest(a) {
				res[i] = Result{Existed: true, TimestampUnixNano: old.TimestampUnixNano}
			} else {
				res[i].Err = ErrExistsDifferent
			}
			continue
		}
		a.TimestampUnixNano = now
		m.accounts[a.ID] = a
		m.lastTS = now
		res[i].TimestampUnixNano = now
	}
	return res, nil
}

// Submit implements Ledger.
func (m *Memory) Submit(ctx context.Context, ts []Transfer) ([]Result, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	defer m.mu.Unlock()
	now, _ := m.begin()
	res := make([]Result, len(ts))
	for _, s := range chains(ts) {
		m.undo = m.undo[:0]
		failed := -1
		for i := s.lo; i < s.hi && failed < 0; i++ {
			if s.err != nil {
				res[i].Err = s.err
				continue
			}
			r, err := m.apply(ts[i], now)
			if err != nil {
				return nil, fmt.Errorf("submit: %w", err)
			}
			if res[i] = r; r.Err != nil {
				failed = i
			}
		}
		if failed >= 0 {
			for k := len(m.undo) - 1; k >= 0; k-- {
				m.undo[k]()
			}
			for i := s.lo; i < s.hi; i++ {
				if i != failed {
					res[i] = Result{Err: ErrLinkedEventFailed}
				}
			}
		}
	}
	m.undo = m.undo[:0]
	return res, nil
}

// Expire implements Ledger.
func (m *Memory) Expire(ctx context.Context) ([]TransferID, error) {
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("expire: %w", err)
	}
	defer m.mu.Unlock()
	_, expired := m.begin()
	return expired, nil
}

// apply checks one transfer and applies it, logging how to undo it.
func (m *Memory) apply(t Transfer, now int64) (Result, error) {
	if err := checkTransfer(&t, true); err != nil {
		return Result{Err: err}, nil
	}
	if i, ok := m.byID[t.ID]; ok {
		old := m.journal[i].Transfer
		if old.sameRequest(t) {
			return Result{Existed: true, Seq: old.Seq, TimestampUnixNano: old.TimestampUnixNano}, nil
		}
		return Result{Err: ErrExistsDifferent}, nil
	}
	dr, okD := m.accounts[t.DebitAccountID]
	cr, okC := m.accounts[t.CreditAccountID]
	if !okD || !okC {
		return Result{Err: ErrAccountNotFound}, nil
	}
	if dr.Ledger != t.Ledger || cr.Ledger != t.Ledger {
		return Result{Err: ErrLedgerMismatch}, nil
	}
	resolves := t.Flags&(PostPending|VoidPending) != 0
	var p Transfer
	var ps PendingStatus
	if resolves {
		i, ok := m.byID[t.PendingID]
		if !ok {
			return Result{Err: ErrPendingNotFound}, nil
		}
		p = m.journal[i].Transfer
		if p.Flags&Pending == 0 {
			return Result{Err: ErrNotPending}, nil
		}
		if p.DebitAccountID != t.DebitAccountID || p.CreditAccountID != t.CreditAccountID || p.Ledger != t.Ledger {
			return Result{Err: ErrPendingMismatch}, nil
		}
		ps = m.pending[p.ID]
		switch ps.State {
		case StatePosted:
			return Result{Err: ErrAlreadyPosted}, nil
		case StateVoided:
			return Result{Err: ErrAlreadyVoided}, nil
		case StateExpired:
			return Result{Err: ErrPendingExpired}, nil
		}
		if t.Flags&PostPending != 0 && t.AmountMicroUSD > p.AmountMicroUSD {
			return Result{Err: ErrExceedsPendingAmount}, nil
		}
		if t.Flags&VoidPending != 0 && t.AmountMicroUSD != p.AmountMicroUSD {
			return Result{Err: ErrPendingAmountMismatch}, nil
		}
	}
	var deadline int64
	if t.Flags&Pending != 0 && t.TimeoutSec != 0 {
		end := new(big.Int).Add(big.NewInt(now), new(big.Int).Mul(big.NewInt(int64(t.TimeoutSec)), big.NewInt(int64(time.Second))))
		if !end.IsInt64() {
			return Result{Err: ErrOverflow}, nil
		}
		deadline = end.Int64()
	}

	// New balances, in big integers: [debit account, credit account] ×
	// [debits pending, debits posted, credits pending, credits posted].
	bal := func(b Balances) [4]*big.Int {
		return [4]*big.Int{big.NewInt(b.DebitsPendingMicroUSD), big.NewInt(b.DebitsPostedMicroUSD),
			big.NewInt(b.CreditsPendingMicroUSD), big.NewInt(b.CreditsPostedMicroUSD)}
	}
	d, c := bal(dr.Balances), bal(cr.Balances)
	amt := big.NewInt(t.AmountMicroUSD)
	held := big.NewInt(p.AmountMicroUSD)
	switch {
	case t.Flags&Pending != 0:
		d[0].Add(d[0], amt)
		c[2].Add(c[2], amt)
	case t.Flags&PostPending != 0:
		d[0].Sub(d[0], held)
		c[2].Sub(c[2], held)
		d[1].Add(d[1], amt)
		c[3].Add(c[3], amt)
	case t.Flags&VoidPending != 0:
		d[0].Sub(d[0], held)
		c[2].Sub(c[2], held)
	default:
		d[1].Add(d[1], amt)
		c[3].Add(c[3], amt)
	}
	maxI := big.NewInt(math.MaxInt64)
	for _, v := range append(d[:], c[:]...) {
		if v.Sign() < 0 {
			return Result{}, fmt.Errorf("%w: transfer %s drives a balance negative", ErrCorrupt, t.ID)
		}
		if v.Cmp(maxI) > 0 {
			return Result{Err: ErrOverflow}, nil
		}
	}
	for _, a := range []struct {
		flags AccountFlags
		v     [4]*big.Int
	}{{dr.Flags, d}, {cr.Flags, c}} {
		debits := new(big.Int).Add(a.v[0], a.v[1])
		credits := new(big.Int).Add(a.v[2], a.v[3])
		switch {
		case debits.Cmp(maxI) > 0 || credits.Cmp(maxI) > 0:
			return Result{Err: ErrOverflow}, nil
		case a.flags&DebitsMustNotExceedCredits != 0 && debits.Cmp(a.v[3]) > 0:
			return Result{Err: ErrExceedsCredits}, nil
		case a.flags&CreditsMustNotExceedDebits != 0 && credits.Cmp(a.v[1]) > 0:
			return Result{Err: ErrExceedsDebits}, nil
		}
	}

	// Apply, logging the undo steps.
	oldD, oldC, oldTS := dr, cr, m.lastTS
	seq := uint64(len(m.journal) + 1)
	t.Seq, t.TimestampUnixNano = seq, now
	set := func(a *Account, v [4]*big.Int) {
		a.Balances = Balances{v[0].Int64(), v[1].Int64(), v[2].Int64(), v[3].Int64()}
		m.accounts[a.ID] = *a
	}
	set(&dr, d)
	set(&cr, c)
	m.journal = append(m.journal, Entry{Kind: EntryTransfer, Seq: seq, TimestampUnixNano: now, Transfer: t})
	m.byID[t.ID] = int(seq - 1)
	m.stmt[dr.ID] = append(m.stmt[dr.ID], int(seq-1))
	m.stmt[cr.ID] = append(m.stmt[cr.ID], int(seq-1))
	m.lastTS = now
	oldPS, hadPS := m.pending[p.ID]
	switch {
	case t.Flags&Pending != 0:
		m.pending[t.ID] = PendingStatus{ID: t.ID, State: StatePending, ExpiresAtUnixNano: deadline}
	case t.Flags&PostPending != 0:
		ps.State, ps.ResolvedBy, ps.ResolvedSeq, ps.PostedMicroUSD = StatePosted, t.ID, seq, t.AmountMicroUSD
		m.pending[p.ID] = ps
	case t.Flags&VoidPending != 0:
		ps.State, ps.ResolvedBy, ps.ResolvedSeq = StateVoided, t.ID, seq
		m.pending[p.ID] = ps
	}
	m.undo = append(m.undo, func() {
		m.accounts[oldD.ID], m.accounts[oldC.ID] = oldD, oldC
		m.journal = m.journal[:seq-1]
		delete(m.byID, t.ID)
		m.stmt[oldD.ID] = m.stmt[oldD.ID][:len(m.stmt[oldD.ID])-1]
		m.stmt[oldC.ID] = m.stmt[oldC.ID][:len(m.stmt[oldC.ID])-1]
		m.lastTS = oldTS
		delete(m.pending, t.ID)
		if resolves && hadPS {
			m.pending[p.ID] = oldPS
		}
	})
	return Result{Seq: seq, TimestampUnixNano: now}, nil
}

// Account implements Ledger.
func (m *Memory) Account(ctx context.Context, id AccountID) (Account, error) {
	if err := m.lock(ctx); err != nil {
		return Account{}, err
	}
	defer m.mu.Unlock()
	a, ok := m.accounts[id]
	if !ok {
		return Account{}, fmt.Errorf("account %s: %w", id, ErrAccountNotFound)
	}
	return a, nil
}

// Transfer implements Ledger.
func (m *Memory) Transfer(ctx context.Context, id TransferID) (Transfer, error) {
	if err := m.lock(ctx); err != nil {
		return Transfer{}, err
	}
	defer m.mu.Unlock()
	i, ok := m.byID[id]
	if !ok {
		return Transfer{}, fmt.Errorf("transfer %s: %w", id, ErrTransferNotFound)
	}
	return m.journal[i].Transfer, nil
}

// Pending implements Ledger.
func (m *Memory) Pending(ctx context.Context, id TransferID) (PendingStatus, error) {
	if err := m.lock(ctx); err != nil {
		return PendingStatus{}, err
	}
	defer m.mu.Unlock()
	if p, ok := m.pending[id]; ok {
		return p, nil
	}
	if _, ok := m.byID[id]; ok {
		return PendingStatus{}, fmt.Errorf("transfer %s: %w", id, ErrNotPending)
	}
	return PendingStatus{}, fmt.Errorf("transfer %s: %w", id, ErrTransferNotFound)
}

// AccountTransfers implements Ledger.
func (m *Memory) AccountTransfers(ctx context.Context, id AccountID, after TransferID, limit int) ([]Transfer, error) {
	if limit <= 0 || limit > MaxPageTransfers {
		limit = MaxPageTransfers
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if _, ok := m.accounts[id]; !ok {
		return nil, fmt.Errorf("account %s: %w", id, ErrAccountNotFound)
	}
	from := 0
	if !after.IsZero() {
		i, ok := m.byID[after]
		if !ok {
			return nil, fmt.Errorf("cursor %s: %w", after, ErrTransferNotFound)
		}
		from = i + 1
	}
	idx := m.stmt[id]
	k, _ := slices.BinarySearch(idx, from)
	var out []Transfer
	for ; k < len(idx) && len(out) < limit; k++ {
		out = append(out, m.journal[idx[k]].Transfer)
	}
	return out, nil
}

// ScanAccounts implements Auditor.
func (m *Memory) ScanAccounts(ctx context.Context, fn func(Account) error) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	as := make([]Account, 0, len(m.accounts))
	for _, a := range m.accounts {
		as = append(as, a)
	}
	m.mu.Unlock()
	slices.SortFunc(as, func(a, b Account) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	for _, a := range as {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// ScanJournal implements Auditor.
func (m *Memory) ScanJournal(ctx context.Context, afterSeq uint64, fn func(Entry) error) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	var es []Entry
	if afterSeq < uint64(len(m.journal)) {
		es = slices.Clone(m.journal[afterSeq:])
	}
	m.mu.Unlock()
	for _, e := range es {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// ScanPending implements Auditor.
func (m *Memory) ScanPending(ctx context.Context, fn func(PendingStatus) error) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	ps := make([]PendingStatus, 0, len(m.pending))
	for _, p := range m.pending {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	for _, p := range ps {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// Verify runs CheckInvariants. Each Scan call copies under the lock, so
// run it when no writer is busy.
func (m *Memory) Verify(ctx context.Context) error { return CheckInvariants(ctx, m) }
