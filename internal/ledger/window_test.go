package ledger

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func wantBounds(t *testing.T, w Window, now, start, end time.Time) {
	t.Helper()
	s, e := w.Bounds(now)
	if !s.Equal(start) || !e.Equal(end) {
		t.Fatalf("%+v at %v: [%v, %v), want [%v, %v)", w, now, s, e, start, end)
	}
}

func TestDayStartsAtLocalMidnight(t *testing.T) {
	tokyo := mustZone(t, "Asia/Tokyo")
	w := Window{Period: Day, Location: tokyo}
	day := time.Date(2026, 5, 10, 0, 0, 0, 0, tokyo)
	next := time.Date(2026, 5, 11, 0, 0, 0, 0, tokyo)
	wantBounds(t, w, day, day, next)
	wantBounds(t, w, next.Add(-time.Nanosecond), day, next)
	wantBounds(t, w, next, next, time.Date(2026, 5, 12, 0, 0, 0, 0, tokyo))
	// 16:00 UTC is already the next day in Tokyo.
	wantBounds(t, w, time.Date(2026, 5, 10, 16, 0, 0, 0, time.UTC), next, time.Date(2026, 5, 12, 0, 0, 0, 0, tokyo))
}

func TestWeekStartsMonday(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	w := Window{Period: Week, Location: ny}
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, ny)
	if monday.Weekday() != time.Monday {
		t.Fatalf("%v is a %v", monday, monday.Weekday())
	}
	next := time.Date(2026, 3, 9, 0, 0, 0, 0, ny) // 167h later: DST starts on the 8th
	for d := range 7 {
		now := time.Date(2026, 3, 2+d, 13, 0, 0, 0, ny)
		wantBounds(t, w, now, monday, next)
	}
	wantBounds(t, w, next.Add(-time.Nanosecond), monday, next)
	wantBounds(t, w, next, next, time.Date(2026, 3, 16, 0, 0, 0, 0, ny))
	if got := next.Sub(monday); got != 167*time.Hour {
		t.Fatalf("DST week lasts %v, want 167h", got)
	}
	// Week across a year boundary.
	wantBounds(t, Window{Period: Week}, time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 28, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC))
}

func TestMonthInNewYork(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	w := Window{Period: Month, Location: ny}
	feb := time.Date(2026, 2, 1, 0, 0, 0, 0, ny)
	mar := time.Date(2026, 3, 1, 0, 0, 0, 0, ny)
	apr := time.Date(2026, 4, 1, 0, 0, 0, 0, ny)
	wantBounds(t, w, mar.Add(-time.Nanosecond), feb, mar)
	wantBounds(t, w, mar, mar, apr)
	// 03:00 UTC on March 1st is still February in New York.
	wantBounds(t, w, time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC), feb, mar)
	if got := apr.Sub(mar); got != 31*24*time.Hour-time.Hour {
		t.Fatalf("March 2026 in New York lasts %v, want 743h (DST)", got)
	}
	// December rolls into the next year.
	wantBounds(t, w, time.Date(2026, 12, 31, 23, 0, 0, 0, ny),
		time.Date(2026, 12, 1, 0, 0, 0, 0, ny), time.Date(2027, 1, 1, 0, 0, 0, 0, ny))
}

func TestQuarter(t *testing.T) {
	tokyo := mustZone(t, "Asia/Tokyo")
	w := Window{Period: Quarter, Location: tokyo}
	for m := time.January; m <= time.December; m++ {
		first := time.Month((int(m)-1)/3*3 + 1)
		start := time.Date(2026, first, 1, 0, 0, 0, 0, tokyo)
		end := time.Date(2026, first+3, 1, 0, 0, 0, 0, tokyo)
		wantBounds(t, w, time.Date(2026, m, 15, 9, 0, 0, 0, tokyo), start, end)
	}
	q2 := time.Date(2026, 4, 1, 0, 0, 0, 0, tokyo)
	wantBounds(t, w, q2.Add(-time.Nanosecond), time.Date(2026, 1, 1, 0, 0, 0, 0, tokyo), q2)
	wantBounds(t, w, time.Date(2026, 12, 31, 23, 59, 59, 0, tokyo),
		time.Date(2026, 10, 1, 0, 0, 0, 0, tokyo), time.Date(2027, 1, 1, 0, 0, 0, 0, tokyo))
}

func TestRollingAndLifetimeBounds(t *testing.T) {
	wantBounds(t, Window{Rolling: 5 * time.Hour}, t0, t0.Add(-5*time.Hour), t0)
	wantBounds(t, Window{}, t0, time.Time{}, time.Time{})
	wantBounds(t, Window{Period: Day}, t0, time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 16, 0, 0, 0, 0, time.UTC))
}

func TestRollingBucketsAreBounded(t *testing.T) {
	for _, c := range []struct {
		rolling, width time.Duration
	}{
		{time.Hour, time.Minute},
		{24 * time.Hour, 24 * time.Minute},
		{90 * time.Second, 2 * time.Second},
		{time.Second, time.Second},
		{7*24*time.Hour + time.Second, 168*time.Minute + time.Second},
	} {
		w := Window{Rolling: c.rolling}
		if got := w.bucketWidth(); got != c.width {
			t.Fatalf("rolling %v: bucket width %v, want %v", c.rolling, got, c.width)
		}
		for _, offset := range []time.Duration{0, time.Millisecond, 999 * time.Millisecond, 17 * time.Second} {
			now := t0.Add(offset)
			cs := w.readCounters(now)
			if len(cs) > 61 || len(cs) < 1 {
				t.Fatalf("rolling %v at %v: %d buckets", c.rolling, now, len(cs))
			}
			// The buckets cover the window: the first starts at or before
			// now-rolling, the last is the one spend at now goes to.
			first := cs[0].until.Add(-c.rolling - c.width)
			if first.After(now.Add(-c.rolling)) || cs[len(cs)-1].key != w.writeCounter(now).key {
				t.Fatalf("rolling %v at %v: buckets %v", c.rolling, now, cs)
			}
		}
	}
}

// TestCounterKeys: counter keys are stored in files and Redis, so they keep
// the format they had when fmt built them.
func TestCounterKeys(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	now := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	for _, w := range []Window{{Period: Month, Location: ny}, {Period: Day}, {Period: Quarter, Location: ny}} {
		start, _ := w.Bounds(now)
		if got, want := w.writeCounter(now).key, fmt.Sprintf("cal|%s|%s|%d", w.Period, w.location(), start.Unix()); got != want {
			t.Errorf("%+v: key %q, want %q", w, got, want)
		}
	}
	w := Window{Rolling: time.Hour}
	for _, b := range []int64{0, 7, 123456789, math.MaxInt64, -1, -98765, math.MinInt64 + 1} {
		if got, want := w.bucket(60, b).key, fmt.Sprintf("roll|%d|%020d", 60, b); got != want {
			t.Errorf("bucket %d: key %q, want %q", b, got, want)
		}
	}
}
