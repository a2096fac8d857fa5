package service

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
)

// TestHasKey: a party has a key of a role only while one of that role is
// usable — another role's, a revoked or an expired key does not count; a
// malformed party is an error.
func TestHasKey(t *testing.T) {
	t.Parallel()
	s, _, clk := newMemService(t)
	ctx := context.Background()
	keys := auth.NewKeys(s.Store(), rand.Reader, clk.now)
	has := func(party string, role auth.Role) bool {
		t.Helper()
		ok, err := s.HasKey(ctx, party, role)
		noErr(t, err)
		return ok
	}
	if has("sabc", auth.RoleSolver) {
		t.Fatal("no key yet")
	}
	_, rec := issued(keys.Issue(ctx, "sabc", auth.RoleSolver, 0))
	if !has("sabc", auth.RoleSolver) || has("sabc", auth.RoleVerifier) || has("sabd", auth.RoleSolver) {
		t.Fatal("solver key of sabc")
	}
	noErr(t, keys.Revoke(ctx, rec.ID))
	if has("sabc", auth.RoleSolver) {
		t.Fatal("revoked key counts")
	}
	issued(keys.Issue(ctx, "vabc", auth.RoleVerifier, time.Hour))
	if !has("vabc", auth.RoleVerifier) {
		t.Fatal("verifier key of vabc")
	}
	clk.add(2 * time.Hour)
	if has("vabc", auth.RoleVerifier) {
		t.Fatal("expired key counts")
	}
	if _, err := s.HasKey(ctx, "bad party!", auth.RoleSolver); err == nil {
		t.Fatal("malformed party accepted")
	}
}

func issued(_ string, rec auth.Record, err error) (string, auth.Record) {
	if err != nil {
		panic(err)
	}
	return "", rec
}
