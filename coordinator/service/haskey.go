package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/beluga-compute/beluga/coordinator/auth"
)

// HasKey reports whether party holds a usable API key (not revoked, not
// expired) of role: a daemon that signs up for itself (POST
// /v1/signup/daemon) gets one key of its role, and is told to ask the
// operator when it has one already. It scans the key records, as
// Enrolled does (sign-ups are rate-limited; the table holds one record a
// key).
func (s *Service) HasKey(ctx context.Context, party string, role auth.Role) (bool, error) {
	if err := CheckPartyID(party); err != nil {
		return false, err
	}
	now := s.cfg.now()
	found := false
	err := s.store.scan("apikey/", func(key string, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if found {
			return nil
		}
		var rec auth.Record
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode %s: %w", strings.TrimPrefix(key, "apikey/"), err)
		}
		found = rec.Role == role && rec.Subject == party && rec.RevokedAt.IsZero() &&
			(rec.ExpiresAt.IsZero() || now.Before(rec.ExpiresAt))
		return nil
	})
	return found, err
}
