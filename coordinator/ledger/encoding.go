package ledger

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Stored records are fixed-size: a tag byte, a version byte, the fields in
// big-endian order, and a CRC-32C of everything before it. A decoder
// accepts exactly one length per tag and version, checks the checksum, and
// then checks that the fields make sense (known flags, non-negative
// balances, the same static rules Submit applies), so a decoded record is
// always one the ledger could have written. Anything else is ErrCorrupt.
//
// A new layout gets a new version byte; decoders keep reading the old ones.

const (
	tagAccount  = 'A'
	tagTransfer = 'T'
	tagExpiry   = 'E'
	tagPending  = 'P'
	tagMeta     = 'M'

	version1 = 1

	headerLen      = 2
	crcLen         = 4
	accountBodyLen = 16 + 4 + 2 + 2 + 32 + 4*8 + 8
	transferBody   = 16 + 16 + 16 + 8 + 16 + 32 + 4 + 4 + 2 + 2 + 8 + 8
	expiryBodyLen  = 16 + 8 + 8
	pendingBodyLen = 16 + 1 + 8 + 16 + 8 + 8
	metaBodyLen    = 8 + 8

	accountLen  = headerLen + accountBodyLen + crcLen
	transferLen = headerLen + transferBody + crcLen
	expiryLen   = headerLen + expiryBodyLen + crcLen
	pendingLen  = headerLen + pendingBodyLen + crcLen
	metaLen     = headerLen + metaBodyLen + crcLen
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// enc appends fields to a record.
type enc struct{ b []byte }

func newEnc(tag byte, size int) *enc {
	e := &enc{b: make([]byte, 0, size)}
	e.b = append(e.b, tag, version1)
	return e
}
func (e *enc) bytes(p []byte) { e.b = append(e.b, p...) }
func (e *enc) u8(v uint8)     { e.b = append(e.b, v) }
func (e *enc) u16(v uint16)   { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32)   { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64)   { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *enc) i64(v int64)    { e.u64(uint64(v)) }
func (e *enc) done() []byte {
	return binary.BigEndian.AppendUint32(e.b, crc32.Checksum(e.b, castagnoli))
}

// dec reads fields from a record whose length, header and checksum openRecord
// has already verified, so reads cannot run past the end.
type dec struct {
	b   []byte
	off int
}

func openRecord(what string, tag byte, size int, b []byte) (*dec, error) {
	if len(b) != size {
		return nil, fmt.Errorf("%w: %s record is %d bytes, want %d", ErrCorrupt, what, len(b), size)
	}
	if b[0] != tag || b[1] != version1 {
		return nil, fmt.Errorf("%w: %s record has tag %q version %d, want %q version %d", ErrCorrupt, what, b[0], b[1], tag, version1)
	}
	body := b[:size-crcLen]
	if got, want := binary.BigEndian.Uint32(b[size-crcLen:]), crc32.Checksum(body, castagnoli); got != want {
		return nil, fmt.Errorf("%w: %s record checksum %08x, want %08x", ErrCorrupt, what, got, want)
	}
	return &dec{b: body, off: headerLen}, nil
}

func (d *dec) bytes(p []byte) { d.off += copy(p, d.b[d.off:]) }
func (d *dec) u8() uint8 {
	d.off++
	return d.b[d.off-1]
}
func (d *dec) u16() uint16 {
	d.off += 2
	return binary.BigEndian.Uint16(d.b[d.off-2:])
}
func (d *dec) u32() uint32 {
	d.off += 4
	return binary.BigEndian.Uint32(d.b[d.off-4:])
}
func (d *dec) u64() uint64 {
	d.off += 8
	return binary.BigEndian.Uint64(d.b[d.off-8:])
}
func (d *dec) i64() int64 { return int64(d.u64()) }

// MarshalBinary returns the account's stored form (version 1).
func (a Account) MarshalBinary() ([]byte, error) { return encodeAccount(&a), nil }

// UnmarshalBinary decodes a stored account; malformed or implausible input
// gives an error wrapping ErrCorrupt and leaves a unchanged.
func (a *Account) UnmarshalBinary(b []byte) error {
	v, err := decodeAccount(b)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// MarshalBinary returns the transfer's stored form (version 1).
func (t Transfer) MarshalBinary() ([]byte, error) { return encodeTransfer(&t), nil }

// UnmarshalBinary decodes a stored transfer; malformed or implausible
// input gives an error wrapping ErrCorrupt and leaves t unchanged.
func (t *Transfer) UnmarshalBinary(b []byte) error {
	v, err := decodeTransfer(b)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func encodeAccount(a *Account) []byte {
	e := newEnc(tagAccount, accountLen)
	e.bytes(a.ID[:])
	e.u32(uint32(a.Ledger))
	e.u16(uint16(a.Code))
	e.u16(uint16(a.Flags))
	e.bytes(a.UserData[:])
	e.i64(a.DebitsPendingMicroUSD)
	e.i64(a.DebitsPostedMicroUSD)
	e.i64(a.CreditsPendingMicroUSD)
	e.i64(a.CreditsPostedMicroUSD)
	e.i64(a.TimestampUnixNano)
	return e.done()
}

func decodeAccount(b []byte) (Account, error) {
	d, err := openRecord("account", tagAccount, accountLen, b)
	if err != nil {
		return Account{}, err
	}
	var a Account
	d.bytes(a.ID[:])
	a.Ledger = LedgerCode(d.u32())
	a.Code = AccountCode(d.u16())
	a.Flags = AccountFlags(d.u16())
	d.bytes(a.UserData[:])
	a.DebitsPendingMicroUSD = d.i64()
	a.DebitsPostedMicroUSD = d.i64()
	a.CreditsPendingMicroUSD = d.i64()
	a.CreditsPostedMicroUSD = d.i64()
	a.TimestampUnixNano = d.i64()

	fresh := a
	fresh.Balances, fresh.TimestampUnixNano = Balances{}, 0
	if err := checkAccount(&fresh); err != nil {
		return Account{}, fmt.Errorf("%w: account %s: %w", ErrCorrupt, a.ID, err)
	}
	if a.DebitsPendingMicroUSD < 0 || a.DebitsPostedMicroUSD < 0 || a.CreditsPendingMicroUSD < 0 ||
		a.CreditsPostedMicroUSD < 0 || a.TimestampUnixNano < 0 {
		return Account{}, fmt.Errorf("%w: account %s: negative balance or timestamp", ErrCorrupt, a.ID)
	}
	return a, nil
}

func encodeTransfer(t *Transfer) []byte {
	e := newEnc(tagTransfer, transferLen)
	e.bytes(t.ID[:])
	e.bytes(t.DebitAccountID[:])
	e.bytes(t.CreditAccountID[:])
	e.i64(t.AmountMicroUSD)
	e.bytes(t.PendingID[:])
	e.bytes(t.UserData[:])
	e.u32(t.TimeoutSec)
	e.u32(uint32(t.Ledger))
	e.u16(t.Code)
	e.u16(uint16(t.Flags))
	e.u64(t.Seq)
	e.i64(t.TimestampUnixNano)
	return e.done()
}

func decodeTransfer(b []byte) (Transfer, error) {
	d, err := openRecord("transfer", tagTransfer, transferLen, b)
	if err != nil {
		return Transfer{}, err
	}
	var t Transfer
	d.bytes(t.ID[:])
	d.bytes(t.DebitAccountID[:])
	d.bytes(t.CreditAccountID[:])
	t.AmountMicroUSD = d.i64()
	d.bytes(t.PendingID[:])
	d.bytes(t.UserData[:])
	t.TimeoutSec = d.u32()
	t.Ledger = LedgerCode(d.u32())
	t.Code = d.u16()
	t.Flags = TransferFlags(d.u16())
	t.Seq = d.u64()
	t.TimestampUnixNano = d.i64()
	if err := checkTransfer(&t, false); err != nil {
		return Transfer{}, fmt.Errorf("%w: transfer %s: %w", ErrCorrupt, t.ID, err)
	}
	if t.TimestampUnixNano < 0 {
		return Transfer{}, fmt.Errorf("%w: transfer %s: negative timestamp", ErrCorrupt, t.ID)
	}
	return t, nil
}

// encodeEntry returns a journal entry's stored form: the transfer record
// for EntryTransfer, an expiry record for EntryExpiry.
func encodeEntry(en *Entry) []byte {
	if en.Kind == EntryTransfer {
		return encodeTransfer(&en.Transfer)
	}
	e := newEnc(tagExpiry, expiryLen)
	e.bytes(en.ExpiredID[:])
	e.u64(en.Seq)
	e.i64(en.TimestampUnixNano)
	return e.done()
}

func decodeEntry(b []byte) (Entry, error) {
	if len(b) > 0 && b[0] == tagTransfer {
		t, err := decodeTransfer(b)
		if err != nil {
			return Entry{}, err
		}
		return Entry{Kind: EntryTransfer, Seq: t.Seq, TimestampUnixNano: t.TimestampUnixNano, Transfer: t}, nil
	}
	d, err := openRecord("expiry", tagExpiry, expiryLen, b)
	if err != nil {
		return Entry{}, err
	}
	en := Entry{Kind: EntryExpiry}
	d.bytes(en.ExpiredID[:])
	en.Seq = d.u64()
	en.TimestampUnixNano = d.i64()
	if en.ExpiredID.IsZero() || en.TimestampUnixNano < 0 {
		return Entry{}, fmt.Errorf("%w: expiry entry %d: zero pending id or negative timestamp", ErrCorrupt, en.Seq)
	}
	return en, nil
}

func encodePending(p *PendingStatus) []byte {
	e := newEnc(tagPending, pendingLen)
	e.bytes(p.ID[:])
	e.u8(uint8(p.State))
	e.i64(p.ExpiresAtUnixNano)
	e.bytes(p.ResolvedBy[:])
	e.u64(p.ResolvedSeq)
	e.i64(p.PostedMicroUSD)
	return e.done()
}

func decodePending(b []byte) (PendingStatus, error) {
	d, err := openRecord("pending", tagPending, pendingLen, b)
	if err != nil {
		return PendingStatus{}, err
	}
	var p PendingStatus
	d.bytes(p.ID[:])
	p.State = PendingState(d.u8())
	p.ExpiresAtUnixNano = d.i64()
	d.bytes(p.ResolvedBy[:])
	p.ResolvedSeq = d.u64()
	p.PostedMicroUSD = d.i64()
	if p.ID.IsZero() || p.State < StatePending || p.State > StateExpired || p.ExpiresAtUnixNano < 0 || p.PostedMicroUSD < 0 {
		return PendingStatus{}, fmt.Errorf("%w: pending status %s", ErrCorrupt, p.ID)
	}
	return p, nil
}

// meta is the ledger's own bookkeeping: the last journal sequence number
// and commit timestamp.
type meta struct {
	lastSeq uint64
	lastTS  int64
}

func encodeMeta(m meta) []byte {
	e := newEnc(tagMeta, metaLen)
	e.u64(m.lastSeq)
	e.i64(m.lastTS)
	return e.done()
}

func decodeMeta(b []byte) (meta, error) {
	d, err := openRecord("meta", tagMeta, metaLen, b)
	if err != nil {
		return meta{}, err
	}
	m := meta{lastSeq: d.u64(), lastTS: d.i64()}
	if m.lastTS < 0 {
		return meta{}, fmt.Errorf("%w: meta: negative timestamp", ErrCorrupt)
	}
	return m, nil
}
