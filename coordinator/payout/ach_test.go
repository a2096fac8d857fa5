package payout

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func testOriginator() Originator {
	return Originator{
		CompanyName:              "BELUGA COMPUTE",
		CompanyID:                "1234567890",
		ImmediateOrigin:          "121042882",
		ImmediateOriginName:      "BELUGA COMPUTE INC",
		ImmediateDestination:     "031300012",
		ImmediateDestinationName: "FEDERAL RESERVE BANK",
		ODFIRouting:              "121042882",
	}
}

func testBatch(t testing.TB) Batch {
	s := mustSchedule(t)
	return Batch{
		Originator: testOriginator(),
		Period:     s.Due(utc(2026, 11, 15, 9, 0)),
		CreatedAt:  utc(2026, 11, 15, 9, 0),
		Payees: []Payee{
			{ID: "solver-2", Account: BankAccount{HolderName: "Grace Hopper", RoutingNumber: "021000021", AccountNumber: "55501234", Type: Savings}, AmountCents: 2_500_00},
			{ID: "solver-1", Account: BankAccount{HolderName: "Ada Lovelace", RoutingNumber: "231380104", AccountNumber: "987654321", Type: Checking}, AmountCents: 10_00},
			{ID: "verifier-7", Account: BankAccount{HolderName: "Alan Turing", RoutingNumber: "011000015", AccountNumber: "12-3456-78", Type: Checking}, AmountCents: MaxEntryCents},
		},
	}
}

func TestBuildParseRoundTrip(t *testing.T) {
	b := testBatch(t)
	data, err := BuildACH(b)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := ParseACH(data)
	if err != nil {
		t.Fatalf("ParseACH: %v\n%s", err, data)
	}
	var total int64
	for _, p := range b.Payees {
		total += p.AmountCents
		if got := sum.CreditCentsByID[p.ID]; got != p.AmountCents {
			t.Errorf("payee %s: parsed %d cents, built %d", p.ID, got, p.AmountCents)
		}
	}
	if sum.EntryCount != len(b.Payees) || sum.TotalCreditCents != total || sum.TotalDebitCents != 0 || len(sum.CreditCentsByID) != len(b.Payees) {
		t.Errorf("summary %+v, want %d entries totalling %d cents", sum, len(b.Payees), total)
	}

	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines)%10 != 0 {
		t.Errorf("%d lines: not blocked by 10", len(lines))
	}
	for i, l := range lines {
		if len(l) != 94 {
			t.Errorf("line %d has %d characters", i+1, len(l))
		}
	}
	// File header: origin, destination, creation date and time.
	if want := "101 031300012 1210428822611150900A094101"; !strings.HasPrefix(lines[0], want) {
		t.Errorf("file header %q, want prefix %q", lines[0], want)
	}
	// Batch header: credits only (220), PPD, effective date 2026-11-15.
	if bh := lines[1]; bh[1:4] != "220" || bh[50:53] != "PPD" || bh[69:75] != "261115" || bh[79:87] != "12104288" {
		t.Errorf("batch header %q", bh)
	}
	// Entries sorted by payee ID, with the transaction code of the account
	// type and trace numbers 1..n.
	wantCodes := []string{"22", "32", "22"}
	wantIDs := []string{"solver-1", "solver-2", "verifier-7"}
	for i := range 3 {
		e := lines[2+i]
		if e[0] != '6' || e[1:3] != wantCodes[i] || strings.TrimSpace(e[39:54]) != wantIDs[i] || e[79:94] != fmt.Sprintf("12104288%07d", i+1) {
			t.Errorf("entry %d %q", i, e)
		}
	}
}

func TestBuildACHDeterministic(t *testing.T) {
	b := testBatch(t)
	first, err := BuildACH(b)
	if err != nil {
		t.Fatal(err)
	}
	// Same input, payees in another order, creation time in another zone.
	b.Payees = []Payee{b.Payees[2], b.Payees[0], b.Payees[1]}
	b.CreatedAt = b.CreatedAt.In(time.FixedZone("X", 5*3600))
	second, err := BuildACH(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("different bytes for the same batch:\n%s\n%s", first, second)
	}
	b.FileIDModifier = "B"
	third, err := BuildACH(b)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, third) {
		t.Fatal("file id modifier ignored")
	}
}

func TestBuildACHRejects(t *testing.T) {
	many := make([]Payee, MaxEntries+1)
	for i := range many {
		many[i] = Payee{ID: fmt.Sprintf("p%d", i), Account: validAccount(), AmountCents: 1}
	}
	tests := []struct {
		name string
		mod  func(*Batch)
		want error
	}{
		{"bad routing check digit", func(b *Batch) { b.Payees[1].Account.RoutingNumber = "231380105" }, ErrInvalidRouting},
		{"empty name", func(b *Batch) { b.Payees[0].Account.HolderName = "" }, ErrInvalidName},
		{"name too long", func(b *Batch) { b.Payees[0].Account.HolderName = strings.Repeat("x", 23) }, ErrInvalidName},
		{"zero amount", func(b *Batch) { b.Payees[2].AmountCents = 0 }, ErrInvalidAmount},
		{"negative amount", func(b *Batch) { b.Payees[2].AmountCents = -100 }, ErrInvalidAmount},
		{"amount over the field", func(b *Batch) { b.Payees[2].AmountCents = MaxEntryCents + 1 }, ErrInvalidAmount},
		{"too many entries", func(b *Batch) { b.Payees = many }, ErrTooManyEntries},
		{"no entries", func(b *Batch) { b.Payees = nil }, ErrNoEntries},
		{"duplicate payee", func(b *Batch) { b.Payees[1].ID = b.Payees[0].ID }, ErrDuplicatePayee},
		{"empty payee id", func(b *Batch) { b.Payees[1].ID = "" }, ErrInvalidPayeeID},
		{"payee id with space", func(b *Batch) { b.Payees[1].ID = "a b" }, ErrInvalidPayeeID},
		{"payee id too long", func(b *Batch) { b.Payees[1].ID = strings.Repeat("p", 16) }, ErrInvalidPayeeID},
		{"bad account", func(b *Batch) { b.Payees[1].Account.AccountNumber = "12 34" }, ErrInvalidAccount},
		{"no account type", func(b *Batch) { b.Payees[1].Account.Type = 0 }, ErrInvalidAccountType},
		{"total over the control field", func(b *Batch) {
			b.Payees = nil
			for i := range 101 {
				b.Payees = append(b.Payees, Payee{ID: fmt.Sprint(i), Account: validAccount(), AmountCents: MaxEntryCents})
			}
		}, ErrTotalTooLarge},
		{"bad odfi", func(b *Batch) { b.Originator.ODFIRouting = "121042883" }, ErrInvalidOriginator},
		{"bad destination", func(b *Batch) { b.Originator.ImmediateDestination = "12345" }, ErrInvalidOriginator},
		{"no company name", func(b *Batch) { b.Originator.CompanyName = "" }, ErrInvalidOriginator},
		{"company id too long", func(b *Batch) { b.Originator.CompanyID = "12345678901" }, ErrInvalidOriginator},
		{"description too long", func(b *Batch) { b.Originator.EntryDescription = "EARNINGS PAY" }, ErrInvalidOriginator},
		{"zero period", func(b *Batch) { b.Period = Period{} }, ErrInvalidBatch},
		{"zero creation time", func(b *Batch) { b.CreatedAt = time.Time{} }, ErrInvalidBatch},
		{"bad file id modifier", func(b *Batch) { b.FileIDModifier = "a" }, ErrInvalidBatch},
	}
	for _, tt := range tests {
		b := testBatch(t)
		tt.mod(&b)
		_, err := BuildACH(b)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: BuildACH error = %v, want %v", tt.name, err, tt.want)
			continue
		}
		for _, p := range b.Payees {
			if strings.Contains(err.Error(), p.Account.AccountNumber) {
				t.Errorf("%s: error %q leaks an account number", tt.name, err)
			}
		}
	}
}

func TestBuildACHMaxEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-entry file")
	}
	b := testBatch(t)
	b.Payees = make([]Payee, MaxEntries)
	var total int64
	for i := range b.Payees {
		b.Payees[i] = Payee{ID: fmt.Sprintf("p%07d", i), Account: validAccount(), AmountCents: int64(i%5000 + 1)}
		total += b.Payees[i].AmountCents
	}
	data, err := BuildACH(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > MaxACHFileBytes {
		t.Fatalf("%d-entry file is %d bytes, over MaxACHFileBytes", MaxEntries, len(data))
	}
	sum, err := ParseACH(data)
	if err != nil {
		t.Fatal(err)
	}
	if sum.EntryCount != MaxEntries || sum.TotalCreditCents != total {
		t.Fatalf("summary: %d entries, %d cents; want %d, %d", sum.EntryCount, sum.TotalCreditCents, MaxEntries, total)
	}
}

func TestParseACHRejects(t *testing.T) {
	good, err := BuildACH(testBatch(t))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(good), "\n")
	tamper := func(line, pos int, s string) []byte {
		l := slicesClone(lines)
		l[line] = l[line][:pos] + s + l[line][pos+len(s):]
		return []byte(strings.Join(l, "\n"))
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformedACH},
		{"garbage", []byte("hello world"), ErrMalformedACH},
		{"too large", make([]byte, MaxACHFileBytes+1), ErrACHTooLarge},
		{"truncated", good[:len(good)/2], ErrMalformedACH},
		{"entry amount changed", tamper(2, 29, "0000000999"), ErrMalformedACH},
		{"file control total changed", tamper(6, 43, "1"), ErrMalformedACH},
		{"no file header", []byte(strings.Join(lines[1:], "\n")), ErrMalformedACH},
	}
	for _, tt := range tests {
		if _, err := ParseACH(tt.data); !errors.Is(err, tt.want) {
			t.Errorf("%s: ParseACH error = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// FuzzParseACH checks that ParseACH never panics and that whatever it
// accepts is self-consistent.
func FuzzParseACH(f *testing.F) {
	b := testBatch(f)
	good, err := BuildACH(b)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-95])
	f.Add(bytes.ReplaceAll(good, []byte("\n"), nil))
	f.Add(bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")))
	f.Add([]byte(strings.SplitN(string(good), "\n", 2)[0]))
	f.Add([]byte("5"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		sum, err := ParseACH(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedACH) && !errors.Is(err, ErrACHTooLarge) && !errors.Is(err, ErrUnsupportedACH) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		var byID int64
		for _, v := range sum.CreditCentsByID {
			byID += v
		}
		if byID != sum.TotalCreditCents || sum.TotalCreditCents < 0 || sum.TotalDebitCents < 0 || sum.EntryCount < 0 {
			t.Fatalf("inconsistent summary %+v", sum)
		}
	})
}
