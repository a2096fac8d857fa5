package payout

import (
	"fmt"
	"strings"
)

// AccountType is the kind of a receiving bank account; it picks the ACH
// transaction code.
type AccountType uint8

const (
	// Checking accounts receive credits with transaction code 22.
	Checking AccountType = 1
	// Savings accounts receive credits with transaction code 32.
	Savings AccountType = 2
)

// String returns "checking", "savings" or "invalid(N)".
func (t AccountType) String() string {
	switch t {
	case Checking:
		return "checking"
	case Savings:
		return "savings"
	}
	return fmt.Sprintf("invalid(%d)", uint8(t))
}

// Valid reports whether t is Checking or Savings.
func (t AccountType) Valid() bool { return t == Checking || t == Savings }

// ParseAccountType parses "checking" or "savings".
func ParseAccountType(s string) (AccountType, error) {
	switch s {
	case "checking":
		return Checking, nil
	case "savings":
		return Savings, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrInvalidAccountType, s)
}

// creditCode is the PPD credit transaction code for t.
func (t AccountType) creditCode() int {
	if t == Savings {
		return 32
	}
	return 22
}

// Field limits of the NACHA entry detail record.
const (
	// MaxHolderNameLen is the length of the entry's Individual Name field.
	MaxHolderNameLen = 22
	// MaxAccountNumberLen is the length of the DFI Account Number field.
	MaxAccountNumberLen = 17
	// MaxPayeeIDLen is the length of the Individual Identification Number
	// field, which carries the payee ID.
	MaxPayeeIDLen = 15
)

// BankAccount is where a payee is paid.
type BankAccount struct {
	// HolderName is the account holder's name as the ACH entry carries it:
	// 1..22 printable ASCII characters, no leading or trailing space.
	HolderName string
	// RoutingNumber is the receiving bank's nine-digit ABA routing number.
	RoutingNumber string
	// AccountNumber is 1..17 letters, digits or '-'.
	AccountNumber string
	// Type is Checking or Savings.
	Type AccountType
}

// Validate checks every field. Its errors never contain the account
// number.
func (a BankAccount) Validate() error {
	if err := checkText(a.HolderName, MaxHolderNameLen); err != nil {
		return fmt.Errorf("%w: holder name: %v", ErrInvalidName, err)
	}
	if err := CheckRouting(a.RoutingNumber); err != nil {
		return err
	}
	if err := checkAccountNumber(a.AccountNumber); err != nil {
		return err
	}
	if !a.Type.Valid() {
		return fmt.Errorf("%w: %v", ErrInvalidAccountType, a.Type)
	}
	return nil
}

// String describes the account with the account number masked to its
// last four characters, so that logging a BankAccount leaks no account
// number.
func (a BankAccount) String() string {
	return fmt.Sprintf("{%s %s %s %s}", a.HolderName, a.RoutingNumber, maskAccount(a.AccountNumber), a.Type)
}

// GoString masks the account number like String, for %#v.
func (a BankAccount) GoString() string {
	return fmt.Sprintf("payout.BankAccount{HolderName:%q, RoutingNumber:%q, AccountNumber:%q, Type:%v}",
		a.HolderName, a.RoutingNumber, maskAccount(a.AccountNumber), a.Type)
}

func maskAccount(acct string) string {
	if len(acct) <= 4 {
		return strings.Repeat("*", len(acct))
	}
	return strings.Repeat("*", len(acct)-4) + acct[len(acct)-4:]
}

// CheckRouting reports whether routing is a valid ABA routing transit
// number: exactly nine ASCII digits whose weighted sum (weights 3, 7, 1
// repeating) is a multiple of ten. All-zero is refused. The error wraps
// ErrInvalidRouting.
func CheckRouting(routing string) error {
	if len(routing) != 9 {
		return fmt.Errorf("%w: %d characters, want 9 digits", ErrInvalidRouting, len(routing))
	}
	weights := [9]int{3, 7, 1, 3, 7, 1, 3, 7, 1}
	sum := 0
	for i := range 9 {
		c := routing[i]
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: non-digit at position %d", ErrInvalidRouting, i+1)
		}
		sum += weights[i] * int(c-'0')
	}
	if routing == "000000000" {
		return fmt.Errorf("%w: all zeros", ErrInvalidRouting)
	}
	if sum%10 != 0 {
		return fmt.Errorf("%w: %s fails the check digit", ErrInvalidRouting, routing)
	}
	return nil
}

// checkAccountNumber validates an account number without echoing it.
func checkAccountNumber(acct string) error {
	if len(acct) == 0 || len(acct) > MaxAccountNumberLen {
		return fmt.Errorf("%w: length %d not in 1..%d", ErrInvalidAccount, len(acct), MaxAccountNumberLen)
	}
	for i := 0; i < len(acct); i++ {
		c := acct[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-') {
			return fmt.Errorf("%w: character at position %d is not a letter, digit or '-'", ErrInvalidAccount, i+1)
		}
	}
	return nil
}

// checkText validates a fixed-width alphanumeric ACH field value: 1..maxLen
// printable ASCII characters without leading or trailing spaces (the
// reader trims them, so they would not survive a round trip).
func checkText(s string, maxLen int) error {
	if len(s) == 0 {
		return fmt.Errorf("empty")
	}
	if len(s) > maxLen {
		return fmt.Errorf("%d characters, at most %d", len(s), maxLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Errorf("byte %#x at position %d is not printable ASCII", s[i], i+1)
		}
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return fmt.Errorf("leading or trailing space")
	}
	return nil
}

// checkPayeeID validates a payee ID for the ACH individual ID field.
func checkPayeeID(id string) error {
	if err := checkText(id, MaxPayeeIDLen); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPayeeID, err)
	}
	if strings.Contains(id, " ") {
		return fmt.Errorf("%w: %q contains a space", ErrInvalidPayeeID, id)
	}
	return nil
}
