package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// opener returns a new, empty ledger that is closed when the test ends.
type opener func(t *testing.T) Ledger

// conformance is the behaviour every backend must have; each case gets a
// fresh ledger.
var conformance = []struct {
	name string
	run  func(t *testing.T, l Ledger)
}{
	{"ReserveSettleBudget", testReserveSettleBudget},
	{"SettleMoreOrLessThanHeld", testSettleMoreOrLess},
	{"BudgetRefusesOverLimit", testBudgetRefuses},
	{"ReserveIsIdempotent", testReserveIdempotent},
	{"ReserveAfterSettleAnswersAsFirst", testReserveAfterSettle},
	{"SettleIsIdempotent", testSettleIdempotent},
	{"SettleErrors", testSettleErrors},
	{"ReleaseIsIdempotent", testReleaseIdempotent},
	{"AllOrNothingAcrossHolds", testAllOrNothing},
	{"SameAccountTwiceInOneReservation", testSameAccountTwice},
	{"ChargeGoesBelowZeroAndGrantPaysDebt", testChargeDebt},
	{"ChargeIsIdempotent", testChargeIdempotent},
	{"GrantIsIdempotent", testGrantIdempotent},
	{"GrantsExpireAndExpiringFirstIsDrawnFirst", testGrantOrder},
	{"HoldsExpireAfterTTL", testHoldTTL},
	{"UsageCountedOncePerAccount", testUsage},
	{"MonthRollsOverAtLocalMidnight", testMonthLocalMidnight},
	{"WeekStartsMonday", testWeekStartsMonday},
	{"RollingWindowAgesSpendOut", testRollingWindow},
	{"LargeAmountsAreExact", testLargeAmounts},
	{"InvalidArguments", testInvalid},
	{"ConcurrentReservesNeverOverspend", testConcurrentReserves},
	{"ConcurrentRetriesCountOnce", testConcurrentRetries},
}

func runConformance(t *testing.T, open opener) {
	for _, c := range conformance {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

func testReserveSettleBudget(t *testing.T, l Ledger) {
	a := budgetAccount("team", units(10), monthUTC)
	wantAdmitted(t, reserve(t, l, "r1", t0, hold(a, units(4))), units(6))
	wantBalance(t, l, a, t0, 0, units(4), units(6))

	u := Usage{Requests: 1, InputTokens: 100, CachedInputTokens: 20, OutputTokens: 50}
	settle(t, l, "r1", t0.Add(time.Second), u, units(3))
	s := wantBalance(t, l, a, t0.Add(time.Second), units(3), 0, units(7))
	if s.Usage != u {
		t.Fatalf("usage %+v, want %+v", s.Usage, u)
	}
	if want, _ := monthUTC.Bounds(t0); !s.WindowStart.Equal(want) {
		t.Fatalf("window start %v, want %v", s.WindowStart, want)
	}
}

func testSettleMoreOrLess(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	reserve(t, l, "more", t0, hold(p, units(2)))
	settle(t, l, "more", t0, Usage{}, units(5))
	wantBalance(t, l, p, t0, units(5), 0, units(5))

	reserve(t, l, "less", t0, hold(p, units(4)))
	settle(t, l, "less", t0, Usage{}, units(1))
	wantBalance(t, l, p, t0, units(6), 0, units(4))
}

func testBudgetRefuses(t *testing.T, l Ledger) {
	a := budgetAccount("team", units(10), monthUTC)
	wantAdmitted(t, reserve(t, l, "big", t0, hold(a, units(6))), units(4))
	d := reserve(t, l, "over", t0, hold(a, units(5)))
	wantRefused(t, d, 0, units(4))
	if _, end := monthUTC.Bounds(t0); !d.ResetAt.Equal(end) {
		t.Fatalf("reset at %v, want the end of the month %v", d.ResetAt, end)
	}
	wantBalance(t, l, a, t0, 0, units(6), units(4))

	// Exactly filling the limit is allowed.
	if err := l.Release(context.Background(), "big"); err != nil {
		t.Fatal(err)
	}
	wantAdmitted(t, reserve(t, l, "fits", t0, hold(a, units(10))), 0)
}

func testReserveIdempotent(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	first := reserve(t, l, "r", t0, hold(p, units(3)))
	wantAdmitted(t, first, units(7))
	// A retry, even with other holds, holds nothing more and answers the same.
	again := reserve(t, l, "r", t0, hold(p, units(5)))
	wantAdmitted(t, again, units(7))
	wantBalance(t, l, p, t0, 0, units(3), units(7))

	// A refusal holds nothing and is not recorded: once the money is there,
	// a retry is admitted.
	wantRefused(t, reserve(t, l, "no", t0, hold(p, units(8))), 0, units(7))
	wantBalance(t, l, p, t0, 0, units(3), units(7))
	grant(t, l, p.Key, Grant{ID: "top-up", Amount: units(10)}, t0)
	wantAdmitted(t, reserve(t, l, "no", t0, hold(p, units(8))), units(9))
	wantBalance(t, l, p, t0, 0, units(11), units(9))
}

func testReserveAfterSettle(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	wantAdmitted(t, reserve(t, l, "r5", t0, hold(p, units(3))), units(7))
	settle(t, l, "r5", t0, Usage{}, units(2))
	// A retry after the settle holds nothing and gets the first answer.
	wantAdmitted(t, reserve(t, l, "r5", t0, hold(p, units(1))), units(7))
	wantBalance(t, l, p, t0, units(2), 0, units(8))
	// A new id that sorts before it is new all the same.
	wantAdmitted(t, reserve(t, l, "r1", t0, hold(p, units(1))), units(7))
	wantBalance(t, l, p, t0, units(2), units(1), units(7))
}

func testSettleIdempotent(t *testing.T, l Ledger) {
	a := budgetAccount("team", units(10), monthUTC)
	reserve(t, l, "r", t0, hold(a, units(5)))
	u := Usage{Requests: 1, OutputTokens: 7}
	settle(t, l, "r", t0, u, units(2))
	settle(t, l, "r", t0, u, units(2))
	settle(t, l, "r", t0, Usage{Requests: 9}, units(9)) // a confused retry
	s := wantBalance(t, l, a, t0, units(2), 0, units(8))
	if s.Usage != u {
		t.Fatalf("usage %+v, want %+v counted once", s.Usage, u)
	}
	// Release after settle changes nothing.
	if err := l.Release(context.Background(), "r"); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, l, a, t0, units(2), 0, units(8))
}

func testSettleErrors(t *testing.T, l Ledger) {
	ctx := context.Background()
	a := budgetAccount("team", units(1), monthUTC)
	wantErr(t, l.Settle(ctx, "never", []money.Micros{1}, Usage{}, t0), ErrUnknownReservation)

	wantRefused(t, reserve(t, l, "refused", t0, hold(a, units(2))), 0, units(1))
	wantErr(t, l.Settle(ctx, "refused", []money.Micros{1}, Usage{}, t0), ErrUnknownReservation)

	reserve(t, l, "released", t0, hold(a, units(1)))
	if err := l.Release(ctx, "released"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, l.Settle(ctx, "released", []money.Micros{1}, Usage{}, t0), ErrReleased)

	reserve(t, l, "r", t0, hold(a, units(1)))
	wantErr(t, l.Settle(ctx, "r", []money.Micros{1, 1}, Usage{}, t0), ErrInvalid)
	wantErr(t, l.Settle(ctx, "r", []money.Micros{-1}, Usage{}, t0), ErrInvalid)
	// Nothing was committed by the failed calls.
	wantBalance(t, l, a, t0, 0, units(1), 0)
}

func testReleaseIdempotent(t *testing.T, l Ledger) {
	ctx := context.Background()
	p := prepaidAccount("wallet")
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(5)}, t0)
	reserve(t, l, "r", t0, hold(p, units(5)))
	wantBalance(t, l, p, t0, 0, units(5), 0)
	for range 2 {
		if err := l.Release(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		wantBalance(t, l, p, t0, 0, 0, units(5))
	}
	if err := l.Release(ctx, "unknown"); err != nil {
		t.Fatalf("Release of an unknown id: %v", err)
	}
	// The released money can be held again.
	wantAdmitted(t, reserve(t, l, "r2", t0, hold(p, units(5))), 0)
}

func testAllOrNothing(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	team := budgetAccount("team", units(5), monthUTC)
	org := budgetAccount("org", units(100), Window{Period: Quarter})
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)

	d := reserve(t, l, "r1", t0, hold(p, units(3)), hold(team, units(6)), hold(org, units(1)))
	wantRefused(t, d, 1, units(10), units(5), units(100))
	for _, a := range []Account{p, team, org} {
		if s := balance(t, l, a, t0); s.Held != 0 {
			t.Fatalf("%s holds %v after a refused reservation", a.Key, s.Held)
		}
	}

	d = reserve(t, l, "r2", t0, hold(p, units(3)), hold(team, units(5)), hold(org, units(1)))
	wantAdmitted(t, d, units(7), 0, units(99))
	settle(t, l, "r2", t0, Usage{Requests: 1}, units(2), units(2), units(2))
	wantBalance(t, l, p, t0, units(2), 0, units(8))
	wantBalance(t, l, team, t0, units(2), 0, units(3))
	wantBalance(t, l, org, t0, units(2), 0, units(98))
}

func testSameAccountTwice(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	wantRefused(t, reserve(t, l, "r1", t0, hold(p, units(6)), hold(p, units(6))), 1, units(10), units(10))
	wantAdmitted(t, reserve(t, l, "r2", t0, hold(p, units(6)), hold(p, units(4))), 0, 0)
	settle(t, l, "r2", t0, Usage{Requests: 1}, units(1), units(2))
	s := wantBalance(t, l, p, t0, units(3), 0, units(7))
	if s.Usage.Requests != 1 {
		t.Fatalf("requests %d, want 1", s.Usage.Requests)
	}
}

func testChargeDebt(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	grant(t, l, p.Key, Grant{ID: "g1", Amount: units(5)}, t0)
	charge(t, l, "c1", t0, Usage{Requests: 1}, hold(p, units(8)))
	wantBalance(t, l, p, t0, units(8), 0, units(-3))
	wantRefused(t, reserve(t, l, "r", t0, hold(p, 0)), 0, units(-3))

	// The next grant pays the debt first, so its expiry cannot revive it.
	exp := t0.Add(time.Hour)
	grant(t, l, p.Key, Grant{ID: "g2", Amount: units(10), ExpiresAt: exp}, t0)
	wantBalance(t, l, p, t0, units(8), 0, units(7))
	wantBalance(t, l, p, exp, units(8), 0, 0)

	team := budgetAccount("team", units(5), monthUTC)
	charge(t, l, "c2", t0, Usage{}, hold(team, units(7)))
	wantBalance(t, l, team, t0, units(7), 0, units(-2))
}

func testChargeIdempotent(t *testing.T, l Ledger) {
	a := budgetAccount("team", units(10), monthUTC)
	u := Usage{Requests: 1, InputTokens: 10}
	for range 3 {
		charge(t, l, "c", t0, u, hold(a, units(2)))
	}
	if s := wantBalance(t, l, a, t0, units(2), 0, units(8)); s.Usage != u {
		t.Fatalf("usage %+v, want %+v", s.Usage, u)
	}
}

func testGrantIdempotent(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(100)}, t0)
	wantBalance(t, l, p, t0, 0, 0, units(10))
	// Grant ids are per account.
	grant(t, l, "other", Grant{ID: "g", Amount: units(1)}, t0)
	wantBalance(t, l, prepaidAccount("other"), t0, 0, 0, units(1))
	// A used-up grant stays counted once.
	charge(t, l, "c", t0, Usage{}, hold(p, units(10)))
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	wantBalance(t, l, p, t0, units(10), 0, 0)
}

func testGrantOrder(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	h1, h2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	grant(t, l, p.Key, Grant{ID: "never", Amount: units(5)}, t0)
	grant(t, l, p.Key, Grant{ID: "late", Amount: units(5), ExpiresAt: h2}, t0)
	grant(t, l, p.Key, Grant{ID: "early", Amount: units(5), ExpiresAt: h1}, t0)
	grant(t, l, p.Key, Grant{ID: "stale", Amount: units(5), ExpiresAt: t0.Add(-time.Second)}, t0)
	wantBalance(t, l, p, t0, 0, 0, units(15))

	// 7 draws early (5) then late (2): nothing is lost when early expires,
	// and late's 3 left are lost when it does.
	reserve(t, l, "r", t0, hold(p, units(7)))
	settle(t, l, "r", t0, Usage{}, units(7))
	wantBalance(t, l, p, t0, units(7), 0, units(8))
	wantBalance(t, l, p, h1.Add(-time.Millisecond), units(7), 0, units(8))
	wantBalance(t, l, p, h1, units(7), 0, units(8))
	wantBalance(t, l, p, h2.Add(-time.Millisecond), units(7), 0, units(8))
	wantBalance(t, l, p, h2, units(7), 0, units(5))

	// After expiry only the never-expiring grant admits.
	wantRefused(t, reserve(t, l, "big", h2, hold(p, units(6))), 0, units(5))
	wantAdmitted(t, reserve(t, l, "fits", h2, hold(p, units(5))), 0)

	// Spend on either side of an expiry draws on what was live at its time.
	q := prepaidAccount("purse")
	grant(t, l, q.Key, Grant{ID: "never", Amount: units(5)}, t0)
	grant(t, l, q.Key, Grant{ID: "early", Amount: units(5), ExpiresAt: h1}, t0)
	reserve(t, l, "before", t0, hold(q, units(3)))
	settle(t, l, "before", t0, Usage{}, units(3)) // from early
	reserve(t, l, "after", h1, hold(q, units(4)))
	settle(t, l, "after", h1, Usage{}, units(4)) // from never: early is gone
	wantBalance(t, l, q, h1, units(7), 0, units(1))
}

func testHoldTTL(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	wantAdmitted(t, reserve(t, l, "crashed", t0, hold(p, units(10))), 0)

	almost := t0.Add(DefaultHoldTTL - time.Millisecond)
	wantBalance(t, l, p, almost, 0, units(10), 0)
	wantRefused(t, reserve(t, l, "early", almost, hold(p, units(1))), 0, 0)

	expired := t0.Add(DefaultHoldTTL)
	wantBalance(t, l, p, expired, 0, 0, units(10))
	wantAdmitted(t, reserve(t, l, "later", expired, hold(p, units(4))), units(6))

	// A late settle still commits what was spent.
	settle(t, l, "crashed", expired.Add(time.Minute), Usage{}, units(3))
	wantBalance(t, l, p, expired.Add(time.Minute), units(3), units(4), units(3))
}

func testUsage(t *testing.T, l Ledger) {
	team := budgetAccount("team", units(10), monthUTC)
	org := budgetAccount("org", units(10), Window{Period: Day})
	u := Usage{Requests: 1, InputTokens: 1000, CachedInputTokens: 200, OutputTokens: 300}
	reserve(t, l, "r", t0, hold(team, 1), hold(org, 1), hold(team, 1))
	settle(t, l, "r", t0, u, 1, 1, 1)
	charge(t, l, "c", t0, u, hold(team, 1), hold(team, 1))
	want := addUsage(u, u)
	for _, a := range []Account{team, org} {
		got := balance(t, l, a, t0).Usage
		if a.Key == "org" && got != u || a.Key == "team" && got != want {
			t.Fatalf("%s usage %+v", a.Key, got)
		}
	}
	// The next day's window of org has no usage; team's month still has it.
	next := t0.Add(24 * time.Hour)
	if got := balance(t, l, org, next).Usage; got != (Usage{}) {
		t.Fatalf("org usage next day %+v, want none", got)
	}
	if got := balance(t, l, team, next).Usage; got != want {
		t.Fatalf("team usage next day %+v, want %+v", got, want)
	}
}

func testMonthLocalMidnight(t *testing.T, l Ledger) {
	for _, zone := range []string{"America/New_York", "Asia/Tokyo"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		w := Window{Period: Month, Location: loc}
		a := budgetAccount("team-"+zone, units(10), w)
		last := time.Date(2026, 1, 31, 23, 59, 59, 0, loc)
		midnight := time.Date(2026, 2, 1, 0, 0, 0, 0, loc)
		charge(t, l, "c-"+zone, last, Usage{Requests: 1}, hold(a, units(7)))

		wantBalance(t, l, a, last, units(7), 0, units(3))
		wantBalance(t, l, a, midnight.Add(-time.Millisecond), units(7), 0, units(3))
		d := reserve(t, l, "r-"+zone, midnight.Add(-time.Millisecond), hold(a, units(4)))
		wantRefused(t, d, 0, units(3))
		if !d.ResetAt.Equal(midnight) {
			t.Fatalf("%s: reset at %v, want local midnight %v", zone, d.ResetAt, midnight)
		}
		s := wantBalance(t, l, a, midnight, 0, 0, units(10))
		if !s.WindowStart.Equal(midnight) || s.Usage != (Usage{}) {
			t.Fatalf("%s: new window starts %v with usage %+v, want %v and none", zone, s.WindowStart, s.Usage, midnight)
		}
		// UTC midnight of the 1st is not the boundary in this zone.
		utc := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		wantSpent := units(7)
		if utc.After(midnight) {
			wantSpent = 0
		}
		wantBalance(t, l, a, utc, wantSpent, 0, units(10)-wantSpent)
	}
}

func testWeekStartsMonday(t *testing.T, l Ledger) {
	w := Window{Period: Week}
	a := budgetAccount("team", units(10), w)
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if monday.Weekday() != time.Monday {
		t.Fatalf("%v is a %v", monday, monday.Weekday())
	}
	sunday := monday.Add(-time.Second)
	charge(t, l, "sun", sunday, Usage{}, hold(a, units(4)))
	charge(t, l, "mon", monday, Usage{}, hold(a, units(1)))
	wantBalance(t, l, a, sunday, units(4), 0, units(6))
	wantBalance(t, l, a, monday.Add(6*24*time.Hour+23*time.Hour), units(1), 0, units(9))
	wantBalance(t, l, a, monday.Add(7*24*time.Hour), 0, 0, units(10))
}

func testRollingWindow(t *testing.T, l Ledger) {
	w := Window{Rolling: time.Hour} // buckets of one minute
	a := budgetAccount("team", units(10), w)
	charge(t, l, "c1", t0, Usage{Requests: 1}, hold(a, units(6)))
	charge(t, l, "c2", t0.Add(30*time.Minute), Usage{Requests: 1}, hold(a, units(3)))

	s := wantBalance(t, l, a, t0.Add(59*time.Minute), units(9), 0, units(1))
	if s.Usage.Requests != 2 || !s.WindowStart.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("snapshot %+v", s)
	}
	d := reserve(t, l, "r", t0.Add(59*time.Minute), hold(a, units(2)))
	wantRefused(t, d, 0, units(1))
	// The oldest spend was in the bucket [t0, t0+1m): it stops counting once
	// that whole bucket is more than an hour old.
	agesOut := t0.Add(time.Hour + time.Minute)
	if !d.ResetAt.Equal(agesOut) {
		t.Fatalf("reset at %v, want %v", d.ResetAt, agesOut)
	}
	wantBalance(t, l, a, agesOut.Add(-time.Second), units(9), 0, units(1))
	wantBalance(t, l, a, agesOut, units(3), 0, units(7))
	wantBalance(t, l, a, t0.Add(91*time.Minute), 0, 0, units(10))
	// Later spend still counts after old buckets were dropped.
	charge(t, l, "c3", t0.Add(3*time.Hour), Usage{}, hold(a, units(2)))
	wantBalance(t, l, a, t0.Add(3*time.Hour+time.Minute), units(2), 0, units(8))
}

func testLargeAmounts(t *testing.T, l Ledger) {
	p := prepaidAccount("wallet")
	big := money.Micros(1_234_567_890_123_457) // 16 digits: past float formatting's exact range
	grant(t, l, p.Key, Grant{ID: "g", Amount: MaxAmount}, t0)
	wantAdmitted(t, reserve(t, l, "r", t0, hold(p, big)), MaxAmount-big)
	settle(t, l, "r", t0, Usage{OutputTokens: 1 << 50}, big+1)
	s := wantBalance(t, l, p, t0, big+1, 0, MaxAmount-big-1)
	if s.Usage.OutputTokens != 1<<50 {
		t.Fatalf("output tokens %d, want %d", s.Usage.OutputTokens, int64(1<<50))
	}

	a := budgetAccount("team", MaxAmount, Window{})
	wantAdmitted(t, reserve(t, l, "all", t0, hold(a, MaxAmount)), 0)
	wantRefused(t, reserve(t, l, "one-more", t0, hold(a, 1)), 0, 0)
}

func testInvalid(t *testing.T, l Ledger) {
	ctx := context.Background()
	ok := budgetAccount("team", units(1), monthUTC)
	bad := []struct {
		name string
		err  error
	}{
		{"empty id", func() error { _, err := l.Reserve(ctx, "", []Hold{hold(ok, 1)}, t0); return err }()},
		{"no holds", func() error { _, err := l.Reserve(ctx, "x", nil, t0); return err }()},
		{"negative", func() error { _, err := l.Reserve(ctx, "x", []Hold{hold(ok, -1)}, t0); return err }()},
		{"too large", func() error { _, err := l.Reserve(ctx, "x", []Hold{hold(ok, MaxAmount+1)}, t0); return err }()},
		{"no kind", func() error { _, err := l.Reserve(ctx, "x", []Hold{hold(Account{Key: "k"}, 1)}, t0); return err }()},
		{"both windows", func() error {
			_, err := l.Balance(ctx, budgetAccount("k", 1, Window{Period: Day, Rolling: time.Hour}), t0)
			return err
		}()},
		{"bad period", func() error { _, err := l.Balance(ctx, budgetAccount("k", 1, Window{Period: "Year"}), t0); return err }()},
		{"unnamed zone", func() error {
			_, err := l.Balance(ctx, budgetAccount("k", 1, Window{Period: Day, Location: time.FixedZone("X", 3600)}), t0)
			return err
		}()},
		{"grant without id", l.Grant(ctx, "k", Grant{Amount: 1}, t0)},
		{"grant before 1970", l.Grant(ctx, "k", Grant{ID: "x", Amount: 1, ExpiresAt: time.Unix(-5, 0)}, t0)},
		{"negative usage", l.Charge(ctx, "c", []Hold{hold(ok, 1)}, Usage{Requests: -1}, t0)},
	}
	for _, b := range bad {
		if !errors.Is(b.err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", b.name, b.err)
		}
	}
	wantBalance(t, l, ok, t0, 0, 0, units(1))
}

// testConcurrentReserves races 500 reservations of one unit against 50
// units of credit and of budget: exactly 50 of each are admitted.
func testConcurrentReserves(t *testing.T, l Ledger) {
	testConcurrent(t, []Ledger{l})
}

// testConcurrent spreads the goroutines over several clients of one ledger.
func testConcurrent(t *testing.T, clients []Ledger) {
	const workers, covered = 500, 50
	ctx := context.Background()
	p := prepaidAccount("wallet")
	team := budgetAccount("team", units(covered), Window{Rolling: time.Hour})
	grant(t, clients[0], p.Key, Grant{ID: "g", Amount: units(covered)}, t0)

	var admittedP, admittedB atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for i := range workers {
		wg.Go(func() {
			l := clients[i%len(clients)]
			for _, a := range []Account{p, team} {
				id := fmt.Sprintf("%s-%d", a.Key, i)
				d, err := l.Reserve(ctx, id, []Hold{hold(a, units(1))}, t0)
				if err != nil {
					errs <- err
					return
				}
				if !d.Admitted {
					continue
				}
				if a.Kind == Prepaid {
					admittedP.Add(1)
				} else {
					admittedB.Add(1)
				}
				if err := l.Settle(ctx, id, []money.Micros{units(1)}, Usage{Requests: 1}, t0); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if admittedP.Load() != covered || admittedB.Load() != covered {
		t.Fatalf("admitted %d prepaid and %d budget, want %d each", admittedP.Load(), admittedB.Load(), covered)
	}
	for _, a := range []Account{p, team} {
		s := wantBalance(t, clients[0], a, t0, units(covered), 0, 0)
		if s.Usage.Requests != covered {
			t.Fatalf("%s counted %d requests, want %d", a.Key, s.Usage.Requests, covered)
		}
	}
}

// testConcurrentRetries sends the same Reserve, then the same Settle, from
// several goroutines at once: each counts once.
func testConcurrentRetries(t *testing.T, l Ledger) {
	const ids, retries = 20, 8
	ctx := context.Background()
	p := prepaidAccount("wallet")
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(1000)}, t0)
	for i := range ids {
		id := fmt.Sprint("r", i)
		var wg sync.WaitGroup
		errs := make(chan error, retries)
		for range retries {
			wg.Go(func() {
				if _, err := l.Reserve(ctx, id, []Hold{hold(p, units(3))}, t0); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		wantBalance(t, l, p, t0, units(2*int64(i)), units(3), units(1000-2*int64(i)-3))
		for range retries {
			wg.Go(func() {
				if err := l.Settle(ctx, id, []money.Micros{units(2)}, Usage{Requests: 1}, t0); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		wantBalance(t, l, p, t0, units(2*int64(i+1)), 0, units(1000-2*int64(i+1)))
	}
	if got := balance(t, l, p, t0).Usage.Requests; got != ids {
		t.Fatalf("%d requests counted, want %d", got, ids)
	}
}

// sweepScenario leaves expired holds, an expired grant and old rolling
// buckets behind, then writes once more, which must drop them. Backends
// check their storage afterwards.
func sweepScenario(t *testing.T, l Ledger) (wallet, team Account) {
	wallet = prepaidAccount("wallet")
	team = budgetAccount("team", units(100), Window{Rolling: time.Hour})
	grant(t, l, wallet.Key, Grant{ID: "soon", Amount: units(5), ExpiresAt: t0.Add(time.Minute)}, t0)
	grant(t, l, wallet.Key, Grant{ID: "never", Amount: units(5)}, t0)
	for i := range 3 {
		reserve(t, l, fmt.Sprint("crashed", i), t0, hold(wallet, units(1)))
	}
	later := t0.Add(DefaultHoldTTL + time.Second)
	reserve(t, l, "live", later, hold(wallet, units(1)))
	reserve(t, l, "open", later, hold(wallet, units(1)))
	settle(t, l, "live", later, Usage{}, units(1))

	for _, at := range []time.Duration{0, 10 * time.Minute, 3 * time.Hour} {
		charge(t, l, fmt.Sprint("c", at), t0.Add(at), Usage{}, hold(team, units(1)))
	}
	wantBalance(t, l, wallet, later, units(1), units(1), units(3))
	wantBalance(t, l, team, t0.Add(3*time.Hour), units(1), 0, units(99))
	return wallet, team
}
