package ledger

import (
	"slices"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/timezone"
)

// accountRecord is an Account as stored with a reservation, so that Settle,
// which gets only an id, knows where to commit.
type accountRecord struct {
	Key     string        `json:"key"`
	Kind    Kind          `json:"kind"`
	Limit   int64         `json:"limit,omitempty"`
	Period  Period        `json:"period,omitempty"`
	Zone    string        `json:"zone,omitempty"`
	Rolling time.Duration `json:"rolling,omitempty"`
}

func recordAccount(a Account) accountRecord {
	r := accountRecord{Key: a.Key, Kind: a.Kind, Limit: int64(a.Limit), Period: a.Window.Period, Rolling: a.Window.Rolling}
	if r.Period != "" {
		r.Zone = a.Window.location().String()
	}
	return r
}

func (r accountRecord) account() (Account, error) {
	a := Account{Key: r.Key, Kind: r.Kind, Limit: money.Micros(r.Limit), Window: Window{Period: r.Period, Rolling: r.Rolling}}
	if r.Zone != "" {
		loc, err := timezone.Load(r.Zone)
		if err != nil {
			return Account{}, err
		}
		a.Window.Location = loc
	}
	return a, nil
}

// Reservation states.
const (
	stateHeld     = "held"
	stateSettled  = "settled"
	stateReleased = "released"
)

// holdRecord is one hold of a stored reservation.
type holdRecord struct {
	Account accountRecord `json:"account"`
	Amount  int64         `json:"amount"`
}

// reservationRecord is what both backends keep per reservation id.
type reservationRecord struct {
	Holds []holdRecord `json:"holds"`
	// ExpiresMS is when the holds stop counting.
	ExpiresMS int64 `json:"expires"`
}

func newReservationRecord(holds []Hold, expires time.Time) reservationRecord {
	r := reservationRecord{ExpiresMS: ms(expires)}
	for _, h := range holds {
		r.Holds = append(r.Holds, holdRecord{Account: recordAccount(h.Account), Amount: int64(h.Amount)})
	}
	return r
}

// commit is one amount to commit in one account, with the usage to count
// there (only once per account, even if it appears in several holds).
type commit struct {
	account Account
	amount  money.Micros
	usage   Usage
}

// commits pairs accounts with amounts and gives usage to the first
// occurrence of each account key.
func commits(accounts []Account, amounts []money.Micros, usage Usage) []commit {
	return appendCommits(make([]commit, 0, len(accounts)), accounts, amounts, usage)
}

// appendCommits is commits appending to dst, for callers that reuse it.
func appendCommits(dst []commit, accounts []Account, amounts []money.Micros, usage Usage) []commit {
	for i, a := range accounts {
		c := commit{account: a, amount: amounts[i]}
		// A request holds a few accounts: a scan beats a map.
		if !slices.ContainsFunc(accounts[:i], func(b Account) bool { return b.Key == a.Key }) {
			c.usage = usage
		}
		dst = append(dst, c)
	}
	return dst
}

func (r reservationRecord) accounts() ([]Account, error) {
	as := make([]Account, len(r.Holds))
	for i, h := range r.Holds {
		a, err := h.Account.account()
		if err != nil {
			return nil, err
		}
		as[i] = a
	}
	return as, nil
}

func holdAccounts(holds []Hold) ([]Account, []money.Micros) {
	as := make([]Account, len(holds))
	amounts := make([]money.Micros, len(holds))
	for i, h := range holds {
		as[i], amounts[i] = h.Account, h.Amount
	}
	return as, amounts
}
