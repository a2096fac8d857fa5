package payout

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheckRouting(t *testing.T) {
	for _, ok := range []string{"021000021", "011000015", "121042882", "231380104", "031300012", "091000019"} {
		if err := CheckRouting(ok); err != nil {
			t.Errorf("CheckRouting(%s) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "02100002", "0210000210", "021000022", "12104288x", "000000000", "１21042882", " 21042882"} {
		if err := CheckRouting(bad); !errors.Is(err, ErrInvalidRouting) {
			t.Errorf("CheckRouting(%q) = %v, want ErrInvalidRouting", bad, err)
		}
	}
}

func validAccount() BankAccount {
	return BankAccount{HolderName: "Ada Lovelace", RoutingNumber: "121042882", AccountNumber: "000123456789", Type: Checking}
}

func TestBankAccountValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*BankAccount)
		want error
	}{
		{"valid", func(*BankAccount) {}, nil},
		{"savings", func(a *BankAccount) { a.Type = Savings }, nil},
		{"hyphenated account", func(a *BankAccount) { a.AccountNumber = "12-3456-7" }, nil},
		{"22-char name", func(a *BankAccount) { a.HolderName = strings.Repeat("N", 22) }, nil},
		{"empty name", func(a *BankAccount) { a.HolderName = "" }, ErrInvalidName},
		{"23-char name", func(a *BankAccount) { a.HolderName = strings.Repeat("N", 23) }, ErrInvalidName},
		{"non-ascii name", func(a *BankAccount) { a.HolderName = "Zoë" }, ErrInvalidName},
		{"newline in name", func(a *BankAccount) { a.HolderName = "A\nB" }, ErrInvalidName},
		{"trailing space", func(a *BankAccount) { a.HolderName = "Ada " }, ErrInvalidName},
		{"bad check digit", func(a *BankAccount) { a.RoutingNumber = "121042883" }, ErrInvalidRouting},
		{"empty account", func(a *BankAccount) { a.AccountNumber = "" }, ErrInvalidAccount},
		{"18-char account", func(a *BankAccount) { a.AccountNumber = strings.Repeat("1", 18) }, ErrInvalidAccount},
		{"space in account", func(a *BankAccount) { a.AccountNumber = "123 456" }, ErrInvalidAccount},
		{"no type", func(a *BankAccount) { a.Type = 0 }, ErrInvalidAccountType},
		{"unknown type", func(a *BankAccount) { a.Type = 7 }, ErrInvalidAccountType},
	}
	for _, tt := range tests {
		a := validAccount()
		tt.mod(&a)
		err := a.Validate()
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Validate() = %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && a.AccountNumber != "" && strings.Contains(err.Error(), a.AccountNumber) {
			t.Errorf("%s: error %q leaks the account number", tt.name, err)
		}
	}
}

func TestBankAccountMasked(t *testing.T) {
	a := validAccount()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(verb, a)
		if strings.Contains(s, a.AccountNumber) {
			t.Errorf("%s prints the account number: %s", verb, s)
		}
		if !strings.Contains(s, "6789") {
			t.Errorf("%s hides the last four digits: %s", verb, s)
		}
	}
	if got := fmt.Sprint(BankAccount{AccountNumber: "123"}); strings.Contains(got, "123") {
		t.Errorf("short account printed: %s", got)
	}
}

func TestAccountType(t *testing.T) {
	for _, at := range []AccountType{Checking, Savings} {
		got, err := ParseAccountType(at.String())
		if err != nil || got != at {
			t.Errorf("ParseAccountType(%q) = %v, %v", at.String(), got, err)
		}
	}
	if _, err := ParseAccountType("loan"); !errors.Is(err, ErrInvalidAccountType) {
		t.Errorf("ParseAccountType(loan) = %v", err)
	}
}
