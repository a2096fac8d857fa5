package auth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestKeys(t testing.TB) (*Keys, *MemStore, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	s := NewMemStore()
	return NewKeys(s, rand.NewChaCha8([32]byte{1}), c.now), s, c
}

func TestIssueAuthenticate(t *testing.T) {
	ctx := context.Background()
	k, store, _ := newTestKeys(t)
	key, rec, err := k.Issue(ctx, "solver-42", RoleSolver, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != TokenLen || !strings.HasPrefix(key, "blg_") || TokenLen != 64 {
		t.Fatalf("key %q", key)
	}
	stored, err := store.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprintf("%+v", stored), key[len(key)-43:]) {
		t.Fatal("store holds the secret")
	}
	p, err := k.Authenticate(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if p != (Principal{KeyID: rec.ID, Subject: "solver-42", Role: RoleSolver}) {
		t.Fatalf("principal %+v", p)
	}
	if err := p.Require(RoleSolver, RoleOperator); err != nil {
		t.Fatal(err)
	}
	if err := p.Require(RoleOperator); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Require(operator) = %v", err)
	}
}

func TestAuthenticateRejects(t *testing.T) {
	ctx := context.Background()
	k, _, c := newTestKeys(t)
	key, _, err := k.Issue(ctx, "client-1", RoleClient, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken(key)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewToken(rand.NewChaCha8([32]byte{2}))
	if err != nil {
		t.Fatal(err)
	}
	wrongSecret := other
	wrongSecret.ID = tok.ID
	// Flip one character of the secret, keeping it canonical base64url.
	flipped := key[:TokenLen-5] + string(key[TokenLen-5]^1) + key[TokenLen-4:]

	for _, bad := range []string{"", "blg_", key[:63], key + "A", strings.ToUpper(key), "xyz_" + key[4:], other.Reveal(), wrongSecret.Reveal(), flipped} {
		if _, err := k.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthorized", bad, err)
		}
	}

	c.t = c.t.Add(time.Hour - time.Nanosecond)
	if _, err := k.Authenticate(ctx, key); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	c.t = c.t.Add(time.Nanosecond)
	if _, err := k.Authenticate(ctx, key); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("at expiry: %v", err)
	}

	key2, rec2, err := k.Issue(ctx, "client-1", RoleClient, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Revoke(ctx, rec2.ID); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(-24 * time.Hour) // a clock that steps back does not un-revoke
	if _, err := k.Authenticate(ctx, key2); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("revoked key: %v", err)
	}
	if err := k.Revoke(ctx, "0000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

func TestIssueRejects(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	for name, f := range map[string]func() error{
		"role 0":       func() error { _, _, err := k.Issue(ctx, "x", 0, 0); return err },
		"role 5":       func() error { _, _, err := k.Issue(ctx, "x", 5, 0); return err },
		"no subject":   func() error { _, _, err := k.Issue(ctx, "", RoleClient, 0); return err },
		"long subject": func() error { _, _, err := k.Issue(ctx, strings.Repeat("s", 257), RoleClient, 0); return err },
		"negative ttl": func() error { _, _, err := k.Issue(ctx, "x", RoleClient, -time.Second); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// constReader returns the same bytes forever: every key ID collides.
type constReader struct{}

func (constReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestIssueCollisions(t *testing.T) {
	ctx := context.Background()
	k := NewKeys(NewMemStore(), constReader{}, time.Now)
	if _, _, err := k.Issue(ctx, "a", RoleClient, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.Issue(ctx, "b", RoleClient, 0); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("collision: %v", err)
	}
}

type brokenStore struct{ MemStore }

func (*brokenStore) Get(context.Context, string) (Record, error) {
	return Record{}, errors.New("disk on fire")
}

func TestStoreFailureIsNotUnauthorized(t *testing.T) {
	ctx := context.Background()
	k, _, c := newTestKeys(t)
	key, _, err := k.Issue(ctx, "a", RoleClient, 0)
	if err != nil {
		t.Fatal(err)
	}
	broken := NewKeys(&brokenStore{}, rand.NewChaCha8([32]byte{}), c.now)
	if _, err := broken.Authenticate(ctx, key); err == nil || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("store failure reported as %v", err)
	}
}

func TestTokenRedaction(t *testing.T) {
	tok, err := NewToken(rand.NewChaCha8([32]byte{3}))
	if err != nil {
		t.Fatal(err)
	}
	secret := tok.Reveal()[len(TokenPrefix)+17:]
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, tok); strings.Contains(s, secret) {
			t.Errorf("%s prints the secret: %s", verb, s)
		}
	}
	back, err := ParseToken(tok.Reveal())
	if err != nil || back != tok {
		t.Fatalf("round trip: %v", err)
	}
}

func TestParseTokenRejects(t *testing.T) {
	tok, _ := NewToken(rand.NewChaCha8([32]byte{4}))
	good := tok.Reveal()
	// The last secret character carries 4 padding bits; 'B' sets one.
	nonCanonical := good[:TokenLen-1] + "B"
	if good[TokenLen-1] == 'B' {
		nonCanonical = good[:TokenLen-1] + "C"
	}
	for name, s := range map[string]string{
		"empty":           "",
		"upper hex id":    good[:4] + strings.ToUpper(good[4:20]) + good[20:],
		"non-hex id":      good[:4] + "g" + good[5:],
		"bad separator":   good[:20] + "-" + good[21:],
		"padding bits":    nonCanonical,
		"std base64 char": good[:30] + "+" + good[31:],
		"wrong prefix":    "blh_" + good[4:],
	} {
		if len(s) == TokenLen && s == good {
			t.Fatalf("%s: test string equals the good key", name)
		}
		if _, err := ParseToken(s); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("%s: ParseToken(%q) = %v", name, s, err)
		}
	}
}

func TestRoles(t *testing.T) {
	for r := RoleClient; r <= RoleOperator; r++ {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%s) = %v, %v", r, got, err)
		}
	}
	if _, err := ParseRole("admin"); !errors.Is(err, ErrInvalidRole) {
		t.Errorf("ParseRole(admin) = %v", err)
	}
}

func TestMemStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				id := fmt.Sprintf("%d-%d", i, j)
				if err := s.Create(ctx, Record{ID: id}); err != nil {
					t.Error(err)
				}
				if _, err := s.Get(ctx, id); err != nil {
					t.Error(err)
				}
				_ = s.Revoke(ctx, id, time.Unix(1, 0))
			}
		}()
	}
	wg.Wait()
	if err := s.Create(ctx, Record{ID: "0-0"}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate create: %v", err)
	}
}

// FuzzParseToken: ParseToken never panics, and what it accepts is
// canonical: it prints back to the same string.
func FuzzParseToken(f *testing.F) {
	tok, _ := NewToken(rand.NewChaCha8([32]byte{5}))
	f.Add(tok.Reveal())
	f.Add("blg_0123456789abcdef_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("error %v is not ErrMalformedToken", err)
			}
			return
		}
		if tok.Reveal() != s {
			t.Fatalf("accepted non-canonical %q (prints %q)", s, tok.Reveal())
		}
	})
}
