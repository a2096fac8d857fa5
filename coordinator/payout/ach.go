package payout

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moov-io/ach"
)

// MaxEntries is the most entries BuildACH puts in one file. NACHA's own
// limits are higher (six-digit entry counts); this cap keeps a file under
// about 10 MB and below MaxACHFileBytes, so every file BuildACH writes,
// ParseACH reads.
const MaxEntries = 100_000

// MaxBatchTotalCents is the largest batch or file total: the control
// records' total fields have twelve digits ($9,999,999,999.99).
const MaxBatchTotalCents int64 = 999_999_999_999

// MaxACHFileBytes is the largest input ParseACH accepts.
const MaxACHFileBytes = 16 << 20

// DefaultEntryDescription is the company entry description used when the
// originator sets none; receivers see it on their bank statement.
const DefaultEntryDescription = "PAYOUT"

// Originator is the coordinator operator's ACH origination setup, as
// agreed with its bank (the ODFI).
type Originator struct {
	// CompanyName appears on receivers' statements: 1..16 characters.
	CompanyName string
	// CompanyID is the originator's company identification, usually "1"
	// followed by its EIN: 1..10 characters.
	CompanyID string
	// ImmediateOrigin is the routing number of the sending point.
	ImmediateOrigin string
	// ImmediateOriginName is optional, up to 23 characters.
	ImmediateOriginName string
	// ImmediateDestination is the routing number of the receiving point
	// (the ODFI or the ACH operator).
	ImmediateDestination string
	// ImmediateDestinationName is optional, up to 23 characters.
	ImmediateDestinationName string
	// ODFIRouting is the originating bank's routing number; its first eight
	// digits prefix every trace number.
	ODFIRouting string
	// EntryDescription is optional, up to 10 characters (default
	// DefaultEntryDescription).
	EntryDescription string
}

// Validate checks the originator configuration.
func (o Originator) Validate() error {
	fields := []struct {
		name, v  string
		max      int
		optional bool
	}{
		{"company name", o.CompanyName, 16, false},
		{"company id", o.CompanyID, 10, false},
		{"immediate origin name", o.ImmediateOriginName, 23, true},
		{"immediate destination name", o.ImmediateDestinationName, 23, true},
		{"entry description", o.EntryDescription, 10, true},
	}
	for _, f := range fields {
		if f.optional && f.v == "" {
			continue
		}
		if err := checkText(f.v, f.max); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidOriginator, f.name, err)
		}
	}
	for _, r := range []struct{ name, v string }{
		{"immediate origin", o.ImmediateOrigin},
		{"immediate destination", o.ImmediateDestination},
		{"odfi", o.ODFIRouting},
	} {
		if err := CheckRouting(r.v); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidOriginator, r.name, err)
		}
	}
	return nil
}

// Payee is one credit in a payout file.
type Payee struct {
	// ID is the payee ID; it is the entry's Individual Identification
	// Number (1..15 printable ASCII characters, no spaces), and ParseACH
	// reports amounts by it.
	ID string
	// Account receives the credit.
	Account BankAccount
	// AmountCents is the credit, 1..MaxEntryCents.
	AmountCents int64
}

// Batch is everything BuildACH needs for one payout file.
type Batch struct {
	Originator Originator
	// Period sets the effective entry date (the period's run date).
	Period Period
	// CreatedAt is the file creation date and time written in the file
	// header (in the period's time zone). Record it with the run so that a
	// re-executed run rebuilds identical bytes.
	CreatedAt time.Time
	// FileIDModifier tells apart files created on the same day: "A".."Z" or
	// "0".."9" (default "A").
	FileIDModifier string
	// Payees are paid in order of ID, whatever their order here.
	Payees []Payee
}

// validate checks the whole batch before anything is built. Errors name
// the payee by index and ID, never by account number.
func (b Batch) validate() error {
	if err := b.Originator.Validate(); err != nil {
		return err
	}
	if b.Period.IsZero() {
		return fmt.Errorf("%w: zero period", ErrInvalidBatch)
	}
	if b.CreatedAt.IsZero() {
		return fmt.Errorf("%w: zero creation time", ErrInvalidBatch)
	}
	if m := b.FileIDModifier; m != "" && (len(m) != 1 || !(m[0] >= 'A' && m[0] <= 'Z' || m[0] >= '0' && m[0] <= '9')) {
		return fmt.Errorf("%w: file id modifier %q is not one of A-Z, 0-9", ErrInvalidBatch, m)
	}
	if len(b.Payees) == 0 {
		return ErrNoEntries
	}
	if len(b.Payees) > MaxEntries {
		return fmt.Errorf("%w: %d entries, at most %d", ErrTooManyEntries, len(b.Payees), MaxEntries)
	}
	seen := make(map[string]int, len(b.Payees))
	var total int64
	for i, p := range b.Payees {
		if err := checkPayeeID(p.ID); err != nil {
			return fmt.Errorf("payee %d: %w", i, err)
		}
		if j, dup := seen[p.ID]; dup {
			return fmt.Errorf("%w: %q at %d and %d", ErrDuplicatePayee, p.ID, j, i)
		}
		seen[p.ID] = i
		if err := p.Account.Validate(); err != nil {
			return fmt.Errorf("payee %d (%s): %w", i, p.ID, err)
		}
		if p.AmountCents <= 0 || p.AmountCents > MaxEntryCents {
			return fmt.Errorf("payee %d (%s): %w: %d cents not in 1..%d", i, p.ID, ErrInvalidAmount, p.AmountCents, MaxEntryCents)
		}
		// Each amount is at most MaxEntryCents and the running total at most
		// MaxBatchTotalCents before adding, so the sum cannot overflow.
		total += p.AmountCents
		if total > MaxBatchTotalCents {
			return fmt.Errorf("%w: exceeds %d cents", ErrTotalTooLarge, MaxBatchTotalCents)
		}
	}
	return nil
}

// BuildACH writes a NACHA file with one PPD batch of credits (transaction
// code 22 for checking, 32 for savings), one entry per payee, sorted by
// payee ID, with trace numbers 1..n under the ODFI's prefix. The whole
// batch is validated first; nothing is built from invalid input. The
// output depends only on b: the same batch gives the same bytes.
func BuildACH(b Batch) ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	payees := slices.Clone(b.Payees)
	slices.SortFunc(payees, func(x, y Payee) int { return cmp.Compare(x.ID, y.ID) })

	loc := b.Period.End().Location()
	created := b.CreatedAt.In(loc)

	fh := ach.NewFileHeader()
	fh.ImmediateOrigin = b.Originator.ImmediateOrigin
	fh.ImmediateOriginName = b.Originator.ImmediateOriginName
	fh.ImmediateDestination = b.Originator.ImmediateDestination
	fh.ImmediateDestinationName = b.Originator.ImmediateDestinationName
	fh.FileCreationDate = created.Format("060102")
	fh.FileCreationTime = created.Format("1504")
	if b.FileIDModifier != "" {
		fh.FileIDModifier = b.FileIDModifier
	}

	bh := ach.NewBatchHeader()
	bh.ServiceClassCode = ach.CreditsOnly
	bh.StandardEntryClassCode = ach.PPD
	bh.CompanyName = b.Originator.CompanyName
	bh.CompanyIdentification = b.Originator.CompanyID
	bh.CompanyEntryDescription = cmp.Or(b.Originator.EntryDescription, DefaultEntryDescription)
	id := b.Period.ID() // YYYY-MM-DD: the run day, even where a zone skipped its midnight
	bh.EffectiveEntryDate = id[2:4] + id[5:7] + id[8:10]
	bh.ODFIIdentification = b.Originator.ODFIRouting[:8]

	batch, err := ach.NewBatch(bh)
	if err != nil {
		return nil, fmt.Errorf("new ach batch: %w", err)
	}
	for i, p := range payees {
		e := ach.NewEntryDetail()
		e.TransactionCode = p.Account.Type.creditCode()
		e.SetRDFI(p.Account.RoutingNumber)
		e.DFIAccountNumber = p.Account.AccountNumber
		e.Amount = int(p.AmountCents) // ≤ MaxEntryCents, fits int on 64-bit
		e.IdentificationNumber = p.ID
		e.IndividualName = p.Account.HolderName
		e.SetTraceNumber(bh.ODFIIdentification, i+1)
		batch.AddEntry(e)
	}
	if err := batch.Create(); err != nil {
		return nil, fmt.Errorf("create ach batch: %w", err)
	}
	f := ach.NewFile()
	f.SetHeader(fh)
	f.AddBatch(batch)
	if err := f.Create(); err != nil {
		return nil, fmt.Errorf("create ach file: %w", err)
	}
	var buf bytes.Buffer
	w := ach.NewWriter(&buf)
	if err := w.Write(f); err != nil {
		return nil, fmt.Errorf("write ach file: %w", err)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("flush ach file: %w", err)
	}
	return buf.Bytes(), nil
}

// Summary is what a NACHA file pays, as read back by ParseACH.
type Summary struct {
	// EntryCount counts entry detail records (credits and debits).
	EntryCount int
	// TotalCreditCents sums the credit entries.
	TotalCreditCents int64
	// TotalDebitCents sums the debit entries (zero in files BuildACH
	// writes).
	TotalDebitCents int64
	// CreditCentsByID sums credit entries by Individual Identification
	// Number (the payee ID in files BuildACH writes).
	CreditCentsByID map[string]int64
}

// ParseACH reads a NACHA file and summarises its entries. The file must be
// well formed and internally consistent (moov-io/ach's record validation,
// then its file validation: batch and file control totals, counts and
// hashes must match the entries). IAT and ADV files are refused with
// ErrUnsupportedACH.
//
// ParseACH never panics. Input over MaxACHFileBytes is refused before
// parsing (ErrACHTooLarge), and a panic inside moov-io/ach, which is not
// hardened against hostile input, is recovered and returned as an error
// wrapping ErrMalformedACH.
func ParseACH(data []byte) (sum Summary, err error) {
	if len(data) > MaxACHFileBytes {
		return Summary{}, fmt.Errorf("%w: %d bytes, at most %d", ErrACHTooLarge, len(data), MaxACHFileBytes)
	}
	defer func() {
		if r := recover(); r != nil {
			sum, err = Summary{}, fmt.Errorf("%w: parser panicked: %v", ErrMalformedACH, r)
		}
	}()
	r := ach.NewReader(bytes.NewReader(data))
	// Every line is at least one byte plus a newline, except perhaps the last.
	r.SetMaxLines(len(data)/2 + 1)
	f, err := r.Read()
	if err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrMalformedACH, err)
	}
	if len(f.IATBatches) > 0 || f.IsADV() {
		return Summary{}, fmt.Errorf("%w: IAT or ADV batches", ErrUnsupportedACH)
	}
	if len(f.Batches) == 0 {
		return Summary{}, fmt.Errorf("%w: no batches", ErrMalformedACH)
	}
	if err := f.Validate(); err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrMalformedACH, err)
	}
	sum.CreditCentsByID = make(map[string]int64)
	for _, b := range f.Batches {
		for _, e := range b.GetEntries() {
			if e == nil {
				return Summary{}, fmt.Errorf("%w: nil entry", ErrMalformedACH)
			}
			amount := int64(e.Amount)
			if amount < 0 || amount > MaxEntryCents {
				return Summary{}, fmt.Errorf("%w: entry amount %d out of range", ErrMalformedACH, amount)
			}
			sum.EntryCount++
			// At most MaxACHFileBytes/2 entries (a record takes at least one
			// byte and a newline) of at most MaxEntryCents each: below 2^57,
			// so these sums cannot overflow.
			switch e.CreditOrDebit() {
			case "C":
				sum.TotalCreditCents += amount
				// moov keeps the field's space padding.
				sum.CreditCentsByID[strings.TrimSpace(e.IdentificationNumber)] += amount
			case "D":
				sum.TotalDebitCents += amount
			default:
				return Summary{}, fmt.Errorf("%w: transaction code %d is neither credit nor debit", ErrMalformedACH, e.TransactionCode)
			}
		}
	}
	return sum, nil
}
