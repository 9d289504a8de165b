package ledger

import (
	"cmp"
	"slices"
)

// liveGrant is a grant with what was used of it. The Redis scripts keep the
// same fields and order (see redis_scripts.go).
type liveGrant struct {
	ID        string `json:"id"`
	Amount    int64  `json:"amount"`
	Used      int64  `json:"used"`
	ExpiresMS int64  `json:"expires,omitempty"` // 0: never
}

// live reports whether the grant still counts at nowMS.
func (g liveGrant) live(nowMS int64) bool {
	return (g.ExpiresMS == 0 || g.ExpiresMS > nowMS) && g.Used < g.Amount
}

// sortGrants puts grants in the order spend draws from them: the one that
// expires first first, so that credit is not lost to expiry while a later
// one is used; never-expiring grants last; ties by ID for determinism.
func sortGrants(gs []liveGrant) {
	slices.SortFunc(gs, func(a, b liveGrant) int {
		if a.ExpiresMS != b.ExpiresMS {
			switch {
			case a.ExpiresMS == 0:
				return 1
			case b.ExpiresMS == 0:
				return -1
			}
			return cmp.Compare(a.ExpiresMS, b.ExpiresMS)
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// consume draws amount from sorted live grants and returns what they could
// not cover.
func consume(gs []liveGrant, amount int64) int64 {
	for i := range gs {
		if amount <= 0 {
			break
		}
		take := min(gs[i].Amount-gs[i].Used, amount)
		gs[i].Used += take
		amount -= take
	}
	return amount
}

// unused is the credit left in live grants.
func unused(gs []liveGrant) int64 {
	var sum int64
	for _, g := range gs {
		sum += g.Amount - g.Used
	}
	return sum
}
