package ledger

import (
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/internal/timezone"
)

// Period is the length of a calendar window.
type Period string

// Calendar periods. A Week starts on Monday.
const (
	Day     Period = "Day"
	Week    Period = "Week"
	Month   Period = "Month"
	Quarter Period = "Quarter"
)

// Window is the span that spend and usage are counted in: a calendar Period
// in Location, a Rolling duration, or, when zero, the account's lifetime.
//
// Rolling windows count spend in buckets of Rolling/60 (rounded up to whole
// seconds) so that a read touches at most 61 buckets. A bucket
// counts whole while any part of it is inside the window, so spend keeps
// counting for up to one bucket width after it is Rolling old: the
// approximation errs towards refusing, never towards overspending.
type Window struct {
	// Period is a calendar window: Day, Week, Month or Quarter.
	Period Period
	// Location is the time zone that calendar windows start at midnight in;
	// nil means UTC. Its name must load with time.LoadLocation, because
	// Settle finds the window again from the stored name.
	Location *time.Location
	// Rolling is the length of a rolling window ending now; exclusive with
	// Period.
	Rolling time.Duration
}

// Bounds returns the window that contains now: for a calendar window the
// local midnights that start it and the next one; for a rolling window
// [now-Rolling, now]; for a lifetime window zero times.
func (w Window) Bounds(now time.Time) (start, end time.Time) {
	if w.Rolling > 0 {
		return now.Add(-w.Rolling), now
	}
	if w.Period == "" {
		return time.Time{}, time.Time{}
	}
	t := now.In(w.location())
	y, m, d := t.Date()
	loc := t.Location()
	switch w.Period {
	case Day:
		return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case Week:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc), time.Date(y, m, d-back+7, 0, 0, 0, 0, loc)
	case Month:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	case Quarter:
		first := m - (m-1)%3
		return time.Date(y, first, 1, 0, 0, 0, 0, loc), time.Date(y, first+3, 1, 0, 0, 0, 0, loc)
	}
	return time.Time{}, time.Time{} // unreachable for a validated window
}

func (w Window) location() *time.Location {
	if w.Location == nil {
		return time.UTC
	}
	return w.Location
}

func (w Window) validate() error {
	if w.Rolling < 0 {
		return invalid("negative rolling window %v", w.Rolling)
	}
	if w.Rolling > 0 {
		if w.Period != "" {
			return invalid("window has both period %q and rolling %v", w.Period, w.Rolling)
		}
		if w.Rolling < time.Second {
			return invalid("rolling window %v is shorter than a second", w.Rolling)
		}
		return nil
	}
	switch w.Period {
	case "":
		return nil
	case Day, Week, Month, Quarter:
	default:
		return invalid("unknown period %q", w.Period)
	}
	if _, err := timezone.Load(w.location().String()); err != nil {
		return invalid("time zone %q cannot be loaded by name: %v", w.location(), err)
	}
	return nil
}

// bucketWidth is the width of a rolling window's buckets: Rolling/60
// rounded up to whole seconds, so that a window spans at most 61 buckets.
func (w Window) bucketWidth() time.Duration {
	width := ((w.Rolling/60 + time.Second - 1) / time.Second) * time.Second
	return max(width, time.Second)
}

// counter is one stored set of spend and usage counters of a window.
type counter struct {
	// key names the counters within the account, unique per window config.
	key string
	// [from, until) are the read times that count it: for a calendar window
	// the window itself, for a rolling bucket from its start until it is
	// too old; both zero for lifetime, which always counts.
	from, until time.Time
}

// covers reports whether a read at now counts c.
func (c counter) covers(now time.Time) bool {
	if c.from.IsZero() && c.until.IsZero() {
		return true
	}
	return !now.Before(c.from) && now.Before(c.until)
}

// readCounters are the counters that make up the window containing now:
// one for calendar and lifetime windows, the overlapping buckets for rolling.
func (w Window) readCounters(now time.Time) []counter {
	if w.Rolling <= 0 {
		return []counter{w.writeCounter(now)}
	}
	width := int64(w.bucketWidth() / time.Second)
	first := floorDiv(now.Add(-w.Rolling).Unix(), width)
	last := floorDiv(now.Unix(), width)
	cs := make([]counter, 0, last-first+1)
	for b := first; b <= last; b++ {
		cs = append(cs, w.bucket(width, b))
	}
	return cs
}

// writeCounter is the counter that spend committed at now goes to.
func (w Window) writeCounter(now time.Time) counter {
	if w.Rolling > 0 {
		width := int64(w.bucketWidth() / time.Second)
		return w.bucket(width, floorDiv(now.Unix(), width))
	}
	if w.Period == "" {
		return counter{key: "life"}
	}
	start, end := w.Bounds(now)
	// "cal|<period>|<zone>|<start, Unix seconds>", built without fmt: every
	// request's spend names its counter.
	k := append(append(append([]byte("cal|"), w.Period...), '|'), w.location().String()...)
	k = strconv.AppendInt(append(k, '|'), start.Unix(), 10)
	return counter{key: string(k), from: start, until: end}
}

func (w Window) bucket(width, b int64) counter {
	// "roll|<width>|<index>", the index zero-padded to 20 characters (as
	// %020d would) so that keys of one width sort by time.
	k := append(strconv.AppendInt([]byte("roll|"), width, 10), '|')
	digits, pad := strconv.AppendUint(nil, uint64(b), 10), 20
	if b < 0 {
		digits, pad = strconv.AppendUint(nil, uint64(-b), 10), 19
		k = append(k, '-')
	}
	k = append(k, "00000000000000000000"[min(len(digits), pad):pad]...)
	return counter{
		key:   string(append(k, digits...)),
		from:  time.Unix(b*width, 0),
		until: time.Unix((b+1)*width, 0).Add(w.Rolling),
	}
}

// rollingPrefix is what every bucket key of this window starts with.
func (w Window) rollingPrefix() string {
	return "roll|" + strconv.FormatInt(int64(w.bucketWidth()/time.Second), 10) + "|"
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
