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

// draw is prepaid spend to draw from grants, at a time in Unix milliseconds.
type draw struct {
	atMS, amount int64
}

// consume draws each spend, in order, from the sorted grants live at its
// time, and returns what they could not cover: debt.
func consume(gs []liveGrant, draws ...draw) int64 {
	var debt int64
	for _, d := range draws {
		left := d.amount
		for i := range gs {
			if left <= 0 {
				break
			}
			if !gs[i].live(d.atMS) {
				continue
			}
			take := min(gs[i].Amount-gs[i].Used, left)
			gs[i].Used += take
			left -= take
		}
		debt += left
	}
	return debt
}

// unused is the credit left in the grants live at nowMS.
func unused(gs []liveGrant, nowMS int64) int64 {
	var sum int64
	for _, g := range gs {
		if g.live(nowMS) {
			sum += g.Amount - g.Used
		}
	}
	return sum
}

// expiresWithin reports whether a grant expires in (fromMS, toMS].
func expiresWithin(gs []liveGrant, fromMS, toMS int64) bool {
	for _, g := range gs {
		if g.ExpiresMS > fromMS && g.ExpiresMS <= toMS {
			return true
		}
	}
	return false
}
