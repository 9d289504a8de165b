// Package ledger is the source of truth for spend: it holds, commits and
// reports money per account, for budgets (a limit per window) and prepaid
// balances (credit grants minus spend).
//
// A request is admitted by Reserve, which holds its maximum cost in every
// account it touches, all or nothing; Settle then commits the actual cost and
// releases the rest, or Release drops the hold when the upstream call failed.
// Charge commits spend without a hold, for policies that settle after the
// fact. Every mutation is idempotent by its id so that a proxy can retry.
//
// Two backends implement Ledger with the same behaviour: Embedded (one bbolt
// file, for a single proxy process) and Redis (Lua scripts on one server,
// shared by any number of proxy processes).
//
// Amounts are money.Micros. Both backends refuse amounts above MaxAmount
// because Redis runs its scripts with IEEE double numbers, which are exact
// integers only up to 2^53.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Kind says how an account admits spend.
type Kind int

const (
	// Budget admits spend while spent+held stays within Limit in the
	// current Window.
	Budget Kind = iota + 1
	// Prepaid admits spend while live credit grants cover spent+held.
	Prepaid
)

// String returns "Budget" or "Prepaid".
func (k Kind) String() string {
	switch k {
	case Budget:
		return "Budget"
	case Prepaid:
		return "Prepaid"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MaxAmount is the largest amount, limit or grant a ledger accepts: 2^53-1
// micro-units, about 9 billion currency units.
const MaxAmount = money.Micros(1<<53 - 1)

// Account names an account and how it admits spend. Callers pass the whole
// account with every call because its policy lives in the API objects, not
// in the ledger.
type Account struct {
	// Key identifies the account's state in the ledger.
	Key string
	// Kind is Budget or Prepaid.
	Kind Kind
	// Limit is the most a Budget account may spend in one Window; unused for
	// Prepaid.
	Limit money.Micros
	// Window is the period that spend and usage are counted in. A Budget's
	// limit applies per window; a Prepaid balance is lifetime whatever the
	// window, which then only groups spend and usage for display.
	Window Window
}

// Usage counts what a request consumed, for status displays.
type Usage struct {
	Requests          int64
	InputTokens       int64
	CachedInputTokens int64
	OutputTokens      int64
}

// Grant is prepaid credit added to an account.
type Grant struct {
	// ID makes the grant count once: adding the same ID again is a no-op.
	ID string
	// Amount is the credit granted.
	Amount money.Micros
	// ExpiresAt is when what is left of the grant stops counting; zero means
	// never.
	ExpiresAt time.Time
}

// Hold is an amount to reserve (or, for Charge, to commit) in one account.
type Hold struct {
	Account Account
	Amount  money.Micros
}

// Decision is the outcome of Reserve.
type Decision struct {
	// Admitted is true when every hold was covered and is now held.
	Admitted bool
	// Refused is the index of the first hold that could not be covered, or
	// -1 when admitted.
	Refused int
	// Remaining is, per hold, what its account has left once the whole
	// reservation is held; when refused nothing is held and it is what the
	// account has left now.
	Remaining []money.Micros
	// ResetAt is, when a Budget refused, when its window next frees spend:
	// the end of a calendar window, or when the oldest spend still counted
	// in a rolling window ages out. Zero otherwise. Always in UTC.
	ResetAt time.Time
}

// Snapshot is an account as read by Balance.
type Snapshot struct {
	// Spent is what was committed in the window that contains the read time
	// (lifetime for a zero Window).
	Spent money.Micros
	// Held is what live reservations hold.
	Held money.Micros
	// Remaining is Limit-Spent-Held for a Budget, and live grants minus
	// lifetime spend minus Held for a Prepaid account. It may be negative
	// after Charge.
	Remaining money.Micros
	// Usage is counted in the same window as Spent.
	Usage Usage
	// WindowStart is the start of that window (zero for lifetime; for a
	// rolling window, the read time minus its length).
	WindowStart time.Time
}

// Ledger is implemented by Embedded and Redis.
type Ledger interface {
	// Reserve holds every amount in every account, all or nothing, if each
	// account can cover it (Budget: spent+held+amount <= limit in the current
	// window; Prepaid: live grants - spent - held >= amount). Idempotent by
	// id: a second Reserve with the same id returns the first decision and
	// holds nothing more. Holds that are neither settled nor released expire
	// after the hold TTL.
	Reserve(ctx context.Context, id string, holds []Hold, now time.Time) (Decision, error)
	// Settle commits the actual amounts (one per hold of the reservation, more
	// or less than held) in the window that contains now, and releases the
	// holds; idempotent by id. It still commits after the holds expired,
	// because the request did happen.
	Settle(ctx context.Context, id string, actual []money.Micros, usage Usage, now time.Time) error
	// Charge commits spend without a prior reservation; idempotent by id. It
	// may drive a balance below zero.
	Charge(ctx context.Context, id string, charges []Hold, usage Usage, now time.Time) error
	// Release drops a reservation without spending; idempotent, and a no-op
	// for a reservation that is settled, refused or unknown.
	Release(ctx context.Context, id string) error
	// Grant adds prepaid credit to an account, counted once by grant ID
	// (re-adding is a no-op, even with another amount). A grant first pays
	// any debt that Charge left; now decides which grants are live for that.
	Grant(ctx context.Context, account string, g Grant, now time.Time) error
	// Balance reads an account in the window that contains now.
	Balance(ctx context.Context, a Account, now time.Time) (Snapshot, error)
	// Close releases the backend's resources.
	Close() error
}

// Errors returned by ledgers; test with errors.Is.
var (
	// ErrInvalid wraps every argument error.
	ErrInvalid = errors.New("ledger: invalid argument")
	// ErrUnknownReservation is returned by Settle for an id that was never
	// reserved or whose record was dropped after the id retention.
	ErrUnknownReservation = errors.New("ledger: unknown reservation")
	// ErrReleased is returned by Settle for a released reservation.
	ErrReleased = errors.New("ledger: reservation was released")
)

// Defaults for Options.
const (
	DefaultHoldTTL = 10 * time.Minute
	// DefaultIDRetention outlasts any retry of a request (its hold lasts
	// HoldTTL) several times over. Ids are stored per request: a day of
	// them at 1,000 requests a second would be 86 million records.
	DefaultIDRetention = time.Hour
)

// Options are shared by both backends; zero fields take the defaults.
type Options struct {
	// HoldTTL is how long an unsettled reservation holds money, so that a
	// crashed proxy cannot hold it forever. Default 10 minutes.
	HoldTTL time.Duration
	// IDRetention is how long reservation and charge ids are remembered to
	// dedupe retries. Default an hour; never shorter than HoldTTL.
	IDRetention time.Duration
}

func (o Options) withDefaults() Options {
	if o.HoldTTL <= 0 {
		o.HoldTTL = DefaultHoldTTL
	}
	if o.IDRetention <= 0 {
		o.IDRetention = DefaultIDRetention
	}
	if o.IDRetention < o.HoldTTL {
		o.IDRetention = o.HoldTTL
	}
	return o
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// validateAmount checks an amount; what and of name it in the error
// (joined only then: this runs on every request).
func validateAmount(what, of string, m money.Micros) error {
	if m < 0 || m > MaxAmount {
		return invalid("%s%s %d is outside 0..%d", what, of, int64(m), int64(MaxAmount))
	}
	return nil
}

func (a Account) validate() error {
	if a.Key == "" {
		return invalid("account key is empty")
	}
	if a.Kind != Budget && a.Kind != Prepaid {
		return invalid("account %q: unknown kind %v", a.Key, a.Kind)
	}
	if err := validateAmount("limit of ", a.Key, a.Limit); err != nil {
		return err
	}
	if err := a.Window.validate(); err != nil {
		return fmt.Errorf("account %q: %w", a.Key, err)
	}
	return nil
}

func validateHolds(id string, holds []Hold) error {
	if id == "" {
		return invalid("id is empty")
	}
	if len(holds) == 0 {
		return invalid("%q has no holds", id)
	}
	for _, h := range holds {
		if err := h.Account.validate(); err != nil {
			return err
		}
		if err := validateAmount("amount for ", h.Account.Key, h.Amount); err != nil {
			return err
		}
	}
	return nil
}

func validateUsage(u Usage) error {
	if u.Requests < 0 || u.InputTokens < 0 || u.CachedInputTokens < 0 || u.OutputTokens < 0 {
		return invalid("negative usage %+v", u)
	}
	return nil
}

func validateGrant(account string, g Grant) error {
	if account == "" {
		return invalid("account key is empty")
	}
	if g.ID == "" {
		return invalid("grant id is empty")
	}
	if !g.ExpiresAt.IsZero() && g.ExpiresAt.UnixMilli() <= 0 {
		return invalid("grant %q expires before 1970", g.ID)
	}
	return validateAmount("grant ", g.ID, g.Amount)
}

// ms is the millisecond time both backends compare expiries in, so that
// they agree to the same precision; zero time stays 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of ms, in UTC.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
