package ledger

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	_ "time/tzdata" // time zones for the window tests, whatever the machine has

	"github.com/tollgate-dev/tollgate/internal/money"
)

// t0 is the injected "now" most tests start at: a Thursday, mid-month.
var t0 = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// units is n whole currency units.
func units(n int64) money.Micros { return money.Micros(n * money.Scale) }

func prepaidAccount(key string) Account { return Account{Key: key, Kind: Prepaid} }

func budgetAccount(key string, limit money.Micros, w Window) Account {
	return Account{Key: key, Kind: Budget, Limit: limit, Window: w}
}

var monthUTC = Window{Period: Month}

func hold(a Account, m money.Micros) Hold { return Hold{Account: a, Amount: m} }

func reserve(t *testing.T, l Ledger, id string, now time.Time, holds ...Hold) Decision {
	t.Helper()
	d, err := l.Reserve(context.Background(), id, holds, now)
	if err != nil {
		t.Fatalf("Reserve %q: %v", id, err)
	}
	return d
}

func settle(t *testing.T, l Ledger, id string, now time.Time, u Usage, actual ...money.Micros) {
	t.Helper()
	if err := l.Settle(context.Background(), id, actual, u, now); err != nil {
		t.Fatalf("Settle %q: %v", id, err)
	}
}

func charge(t *testing.T, l Ledger, id string, now time.Time, u Usage, charges ...Hold) {
	t.Helper()
	if err := l.Charge(context.Background(), id, charges, u, now); err != nil {
		t.Fatalf("Charge %q: %v", id, err)
	}
}

func grant(t *testing.T, l Ledger, account string, g Grant, now time.Time) {
	t.Helper()
	if err := l.Grant(context.Background(), account, g, now); err != nil {
		t.Fatalf("Grant %q to %q: %v", g.ID, account, err)
	}
}

func balance(t *testing.T, l Ledger, a Account, now time.Time) Snapshot {
	t.Helper()
	s, err := l.Balance(context.Background(), a, now)
	if err != nil {
		t.Fatalf("Balance %q: %v", a.Key, err)
	}
	return s
}

// wantBalance checks spent, held and remaining of an account.
func wantBalance(t *testing.T, l Ledger, a Account, now time.Time, spent, held, remaining money.Micros) Snapshot {
	t.Helper()
	s := balance(t, l, a, now)
	if s.Spent != spent || s.Held != held || s.Remaining != remaining {
		t.Fatalf("%s at %v: spent %v held %v remaining %v, want %v %v %v",
			a.Key, now, s.Spent, s.Held, s.Remaining, spent, held, remaining)
	}
	return s
}

func wantAdmitted(t *testing.T, d Decision, remaining ...money.Micros) {
	t.Helper()
	if !d.Admitted || d.Refused != -1 || !slices.Equal(d.Remaining, remaining) {
		t.Fatalf("decision %+v, want admitted with remaining %v", d, remaining)
	}
}

func wantRefused(t *testing.T, d Decision, index int, remaining ...money.Micros) {
	t.Helper()
	if d.Admitted || d.Refused != index || !slices.Equal(d.Remaining, remaining) {
		t.Fatalf("decision %+v, want refused at %d with remaining %v", d, index, remaining)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}
