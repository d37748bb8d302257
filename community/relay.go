package community

import (
	"context"
	"errors"
)

// HasMember reports whether userID is an unbanned member of any community
// of this service. The embedded TURN server asks it on every request, so
// that credentials handed out at a voice join stop working after a kick or
// a ban (a member of another community here could get fresh ones there).
func (s *Service) HasMember(ctx context.Context, userID string) (bool, error) {
	for _, c := range s.All() {
		m, err := c.Member(ctx, userID)
		if errors.Is(err, ErrNotMember) {
			continue
		}
		if err != nil {
			return false, err
		}
		if !m.Banned {
			return true, nil
		}
	}
	return false, nil
}
