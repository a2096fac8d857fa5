package ledger

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"
)

func sampleTransfers() []Transfer {
	full := tx("full", bank, client, math.MaxInt64, pending(math.MaxUint32), linked)
	full.UserData = [32]byte{1, 2, 3, 31: 0xff}
	full.Seq, full.TimestampUnixNano = math.MaxUint64, math.MaxInt64
	p := tx("post", client, escrow, 7, post("hold"))
	p.Seq, p.TimestampUnixNano = 9, 1_700_000_000_000_000_000
	return []Transfer{tx("plain", bank, client, 1), full, p}
}

func sampleAccounts() []Account {
	a := testAccounts()
	a[1].Balances = Balances{1, 2, 3, math.MaxInt64}
	a[1].TimestampUnixNano = 42
	a[2].UserData[5] = 9
	return a
}

func TestEncodingRoundTrip(t *testing.T) {
	for _, tr := range sampleTransfers() {
		b, _ := tr.MarshalBinary()
		var got Transfer
		if err := got.UnmarshalBinary(b); err != nil || got != tr {
			t.Errorf("transfer round trip: %+v, %v; want %+v", got, err, tr)
		}
		e := Entry{Kind: EntryTransfer, Seq: tr.Seq, TimestampUnixNano: tr.TimestampUnixNano, Transfer: tr}
		if got, err := decodeEntry(encodeEntry(&e)); err != nil || got != e {
			t.Errorf("entry round trip: %+v, %v", got, err)
		}
	}
	for _, a := range sampleAccounts() {
		b, _ := a.MarshalBinary()
		var got Account
		if err := got.UnmarshalBinary(b); err != nil || got != a {
			t.Errorf("account round trip: %+v, %v; want %+v", got, err, a)
		}
	}
	e := Entry{Kind: EntryExpiry, Seq: 5, TimestampUnixNano: 6, ExpiredID: DeriveTransferID("x")}
	if got, err := decodeEntry(encodeEntry(&e)); err != nil || got != e {
		t.Errorf("expiry round trip: %+v, %v", got, err)
	}
	p := PendingStatus{ID: DeriveTransferID("p"), State: StatePosted, ExpiresAtUnixNano: 3, ResolvedBy: DeriveTransferID("q"), ResolvedSeq: 4, PostedMicroUSD: 5}
	if got, err := decodePending(encodePending(&p)); err != nil || got != p {
		t.Errorf("pending round trip: %+v, %v", got, err)
	}
	m := meta{lastSeq: 7, lastTS: 8}
	if got, err := decodeMeta(encodeMeta(m)); err != nil || got != m {
		t.Errorf("meta round trip: %+v, %v", got, err)
	}
}

// TestEncodingGolden pins the version-1 layout: changing it silently would
// make every stored ledger unreadable. Fields are big-endian in declaration
// order, then a CRC-32C.
func TestEncodingGolden(t *testing.T) {
	tr := Transfer{ID: TransferID{15: 1}, DebitAccountID: AccountID{15: 2}, CreditAccountID: AccountID{15: 3},
		AmountMicroUSD: 0x0102, Ledger: LedgerUSD, Code: 5, Flags: Pending, TimeoutSec: 9, Seq: 4, TimestampUnixNano: 6}
	const wantT = "5401" + // tag, version
		"00000000000000000000000000000001" + "00000000000000000000000000000002" + "00000000000000000000000000000003" +
		"0000000000000102" + // amount
		"00000000000000000000000000000000" + // pending ID
		"0000000000000000000000000000000000000000000000000000000000000000" + // user data
		"00000009" + "00000348" + "0005" + "0002" + // timeout, ledger, code, flags
		"0000000000000004" + "0000000000000006" + // seq, timestamp
		"4ebf0391" // CRC-32C
	if b, _ := tr.MarshalBinary(); hex.EncodeToString(b) != wantT {
		t.Errorf("transfer encoding\n got %x\nwant %s", b, wantT)
	}
	a := Account{ID: AccountID{15: 1}, Ledger: LedgerUSD, Code: CodeJobEscrow, Balances: Balances{1, 2, 3, 4}, TimestampUnixNano: 5}
	const wantA = "4101" + "00000000000000000000000000000001" + "00000348" + "0002" + "0000" +
		"0000000000000000000000000000000000000000000000000000000000000000" +
		"0000000000000001" + "0000000000000002" + "0000000000000003" + "0000000000000004" + "0000000000000005" +
		"b2930add"
	if b, _ := a.MarshalBinary(); hex.EncodeToString(b) != wantA {
		t.Errorf("account encoding\n got %x\nwant %s", b, wantA)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := sampleTransfers()[0].MarshalBinary()
	mut := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	resum := func(b []byte) []byte { return (&enc{b: b[:len(b)-4]}).done() }
	cases := map[string][]byte{
		"empty":           nil,
		"short":           good[:50],
		"long":            append(bytes.Clone(good), 0),
		"bad tag":         mut(func(b []byte) []byte { b[0] = 'X'; return resum(b) }),
		"future version":  mut(func(b []byte) []byte { b[1] = 2; return resum(b) }),
		"bit flip":        mut(func(b []byte) []byte { b[40] ^= 1; return b }),
		"zero amount":     mut(func(b []byte) []byte { copy(b[2+48:], make([]byte, 8)); return resum(b) }),
		"negative amount": mut(func(b []byte) []byte { b[2+48] = 0x80; return resum(b) }),
		"zero id":         mut(func(b []byte) []byte { copy(b[2:], make([]byte, 16)); return resum(b) }),
		"unknown flags":   mut(func(b []byte) []byte { b[2+132-16-2] = 0x80; return resum(b) }),
	}
	for name, b := range cases {
		var tr Transfer
		if err := tr.UnmarshalBinary(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
		if tr != (Transfer{}) {
			t.Errorf("%s: decoded into %+v", name, tr)
		}
	}
	ga, _ := sampleAccounts()[1].MarshalBinary()
	neg := bytes.Clone(ga)
	neg[2+16+4+2+2+32] = 0x80 // debits pending < 0
	var a Account
	if err := a.UnmarshalBinary((&enc{b: neg[:len(neg)-4]}).done()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("negative balance: %v", err)
	}
	if err := a.UnmarshalBinary(ga[:10]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short account: %v", err)
	}
}

func FuzzDecodeTransfer(f *testing.F) {
	for _, tr := range sampleTransfers() {
		b, _ := tr.MarshalBinary()
		f.Add(b)
	}
	e := Entry{Kind: EntryExpiry, Seq: 5, TimestampUnixNano: 6, ExpiredID: DeriveTransferID("x")}
	f.Add(encodeEntry(&e))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzTransfer(t, b)
		fuzzTransfer(t, withCRC(b)) // past the checksum, into the field checks
	})
}

// withCRC returns b with its last four bytes replaced by a valid CRC-32C,
// so that fuzzed bytes reach the field checks behind the checksum.
func withCRC(b []byte) []byte {
	if len(b) < crcLen {
		return b
	}
	return (&enc{b: bytes.Clone(b[:len(b)-crcLen])}).done()
}

func fuzzTransfer(t *testing.T, b []byte) {
	{
		var tr Transfer
		if err := tr.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
		} else {
			// A decoded record is canonical and valid.
			if again, _ := tr.MarshalBinary(); !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
			}
			bare := tr
			bare.Seq, bare.TimestampUnixNano = 0, 0
			if err := checkTransfer(&bare, true); err != nil {
				t.Fatalf("decoded an invalid transfer: %v", err)
			}
		}
		if en, err := decodeEntry(b); err == nil {
			if again := encodeEntry(&en); !bytes.Equal(again, b) {
				t.Fatalf("entry re-encoding differs")
			}
		}
		if p, err := decodePending(b); err == nil {
			if again := encodePending(&p); !bytes.Equal(again, b) {
				t.Fatalf("pending re-encoding differs")
			}
		}
	}
}

func FuzzDecodeAccount(f *testing.F) {
	for _, a := range sampleAccounts() {
		b, _ := a.MarshalBinary()
		f.Add(b)
	}
	f.Add(encodeMeta(meta{lastSeq: 1, lastTS: 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzAccount(t, b)
		fuzzAccount(t, withCRC(b))
	})
}

func fuzzAccount(t *testing.T, b []byte) {
	{
		var a Account
		if err := a.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
		} else {
			if again, _ := a.MarshalBinary(); !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs")
			}
			if err := flagsHold(0, a.Balances); err != nil && !errors.Is(err, ErrOverflow) {
				t.Fatal(err)
			}
		}
		if m, err := decodeMeta(b); err == nil && !bytes.Equal(encodeMeta(m), b) {
			t.Fatalf("meta re-encoding differs")
		}
	}
}
