package ledger

import (
	"math"
	"slices"
	"sync"
	"time"
)

// memHolds is the Embedded ledger's state in memory: reservations and their
// holds, and spend that is journaled but not yet in the bbolt file.
//
// Holds need not outlive the process, which alone owns the file: a hold lost
// in a crash is a request that was never served, and only settled spend
// must be durable. Journaled spend counts from memory until the flush that
// commits it to the file is visible to the reader.
type memHolds struct {
	mu  sync.Mutex
	res map[string]*memReservation
	// swept is when sweep last ran: it scans every reservation, so it runs
	// at most once a second, not on every call.
	swept time.Time
	// byAccount keeps the holds of each account key.
	byAccount map[string]*accountHolds
	// pending is journaled spend per account key, summed per journal
	// generation and counter; draws is the same spend of prepaid accounts
	// one by one, in order, for drawing on grants.
	pending map[string][]*pendingSpend
	draws   map[string][]pendingDraw
	// applied maps a journal generation to the bbolt write transaction that
	// commits it, while that commit is under way: a read snapshot at or
	// past it already counts the spend.
	applied map[uint64]int
	// charged are charge ids journaled but not yet in the file, by generation.
	charged map[string]uint64
	// file caches accounts as the file has them; every commit clears it.
	file map[string]*fileAccount
	// lastReservation and lastCharge are at or above every id in their
	// bucket of the file: an id above them needs no lookup there. The ids
	// the proxy makes sort by time, so nearly every new one is above.
	lastReservation, lastCharge string
}

type memReservation struct {
	holds    []Hold
	inline   [2]Hold // holds, when there are few: one allocation, not two
	decision Decision
	state    string // stateHeld, stateSettling, stateSettled or stateReleased
	expires  time.Time
	gen      uint64 // the journal generation its settle went to
}

type memHold struct {
	amount    int64
	expiresMS int64
}

// accountHolds are the holds on one account, with their sum, so that a read
// need not add them up while none has expired.
type accountHolds struct {
	holds map[holdKey]memHold
	sum   int64
	// firstExpiryMS is at or before the earliest expiry among holds.
	firstExpiryMS int64
}

// holdKey names the i-th hold of a reservation.
type holdKey struct {
	id string
	i  int
}

// held sums the holds live at nowMS.
func (a *accountHolds) held(nowMS int64) int64 {
	if a == nil {
		return 0
	}
	if a.firstExpiryMS > nowMS {
		return a.sum
	}
	var sum int64
	first := int64(math.MaxInt64)
	for _, h := range a.holds {
		if h.expiresMS > nowMS {
			sum += h.amount
		}
		first = min(first, h.expiresMS)
	}
	a.firstExpiryMS = first
	return sum
}

// pendingSpend is spend of one account in one counter, from one journal
// generation.
type pendingSpend struct {
	gen     uint64
	counter counter
	counts  counts
	// firstMS and lastMS bound when the spend was made.
	firstMS, lastMS int64
}

type pendingDraw struct {
	gen uint64
	draw
}

// stateSettling marks a reservation whose settle is being journaled, so
// that a concurrent settle of the same id commits nothing.
const stateSettling = "settling"

func newMemHolds() *memHolds {
	return &memHolds{
		res: map[string]*memReservation{}, byAccount: map[string]*accountHolds{},
		pending: map[string][]*pendingSpend{}, draws: map[string][]pendingDraw{}, applied: map[uint64]int{}, charged: map[string]uint64{},
		file: map[string]*fileAccount{},
	}
}

// memAccount is what memory adds to an account's state in the file.
type memAccount struct {
	held int64
	// window is journaled spend in the window read, not yet in the
	// snapshot, and oldest when the first of it leaves a rolling window.
	window counts
	oldest time.Time
	// prepaid is a prepaid account's journaled spend, made between
	// firstMS and lastMS; draws lists it spend by spend, in order, for
	// when a grant expires in between and the order matters.
	prepaid, firstMS, lastMS int64
	// from is where the journaled spend is, for draws.
	from     *memHolds
	key      string
	snapshot int
}

// draws lists a prepaid account's journaled spend one by one, in order.
func (a memAccount) draws() []draw {
	var ds []draw
	for _, d := range a.from.draws[a.key] {
		if !a.from.inSnapshot(d.gen, a.snapshot) {
			ds = append(ds, d.draw)
		}
	}
	return ds
}

// inSnapshot reports whether the read snapshot with transaction id
// snapshot already counts the journal generation gen. Callers hold mu.
func (m *memHolds) inSnapshot(gen uint64, snapshot int) bool {
	tx, ok := m.applied[gen]
	return ok && tx <= snapshot
}

// account sums what memory holds for an account at now, as seen from the
// read snapshot with transaction id snapshot. Callers hold mu.
func (m *memHolds) account(key string, w Window, now time.Time, snapshot int) memAccount {
	a := memAccount{held: m.byAccount[key].held(ms(now)), from: m, key: key, snapshot: snapshot}
	for _, p := range m.pending[key] {
		if m.inSnapshot(p.gen, snapshot) {
			continue
		}
		if a.prepaid == 0 || p.firstMS < a.firstMS {
			a.firstMS = p.firstMS
		}
		a.lastMS = max(a.lastMS, p.lastMS)
		a.prepaid += p.counts.spent
		if p.counter.covers(now) {
			a.window.spent += p.counts.spent
			a.window.usage = addUsage(a.window.usage, p.counts.usage)
			if w.Rolling > 0 && p.counts.spent > 0 && (a.oldest.IsZero() || p.counter.until.Before(a.oldest)) {
				a.oldest = p.counter.until
			}
		}
	}
	return a
}

// add records an admitted reservation and its holds. Callers hold mu.
func (m *memHolds) add(id string, holds []Hold, d Decision, expires time.Time) {
	r := &memReservation{decision: d, state: stateHeld, expires: expires}
	if len(holds) <= len(r.inline) {
		r.holds = r.inline[:copy(r.inline[:], holds)]
	} else {
		r.holds = slices.Clone(holds)
	}
	m.res[id] = r
	exp := ms(expires)
	for i, h := range holds {
		a := m.byAccount[h.Account.Key]
		if a == nil {
			a = &accountHolds{holds: map[holdKey]memHold{}, firstExpiryMS: exp}
			m.byAccount[h.Account.Key] = a
		}
		a.holds[holdKey{id, i}] = memHold{amount: int64(h.Amount), expiresMS: exp}
		a.sum += int64(h.Amount)
		a.firstExpiryMS = min(a.firstExpiryMS, exp)
	}
}

// drop removes a reservation's holds. Callers hold mu.
func (m *memHolds) drop(id string, r *memReservation) {
	for i, h := range r.holds {
		a := m.byAccount[h.Account.Key]
		if a == nil {
			continue
		}
		if mh, ok := a.holds[holdKey{id, i}]; ok {
			delete(a.holds, holdKey{id, i})
			a.sum -= mh.amount
		}
		if len(a.holds) == 0 {
			// Kept, empty: accounts are few, and a busy one would make its
			// map anew for nearly every request.
			a.firstExpiryMS = math.MaxInt64
		}
	}
}

// spend counts journaled spend until generation gen is in the file.
// Callers hold mu.
func (m *memHolds) spend(gen uint64, cs []commit, at time.Time) {
	for _, c := range cs {
		ctr := c.account.Window.writeCounter(at)
		var p *pendingSpend
		for _, q := range m.pending[c.account.Key] {
			if q.gen == gen && q.counter.key == ctr.key {
				p = q
			}
		}
		if p == nil {
			p = &pendingSpend{gen: gen, counter: ctr, firstMS: ms(at), lastMS: ms(at)}
			m.pending[c.account.Key] = append(m.pending[c.account.Key], p)
		}
		p.firstMS, p.lastMS = min(p.firstMS, ms(at)), max(p.lastMS, ms(at))
		p.counts.spent += int64(c.amount)
		p.counts.usage = addUsage(p.counts.usage, c.usage)
		if c.account.Kind == Prepaid {
			m.draws[c.account.Key] = append(m.draws[c.account.Key], pendingDraw{gen, draw{ms(at), int64(c.amount)}})
		}
	}
}

// flushed forgets what generation gen journaled, now that the file has it.
// Callers hold mu.
func (m *memHolds) flushed(b batch) {
	dropGeneration(m.pending, func(p *pendingSpend) bool { return p.gen == b.gen })
	dropGeneration(m.draws, func(d pendingDraw) bool { return d.gen == b.gen })
	for _, en := range b.entries {
		if en.Charge {
			if m.charged[en.ID] == b.gen {
				delete(m.charged, en.ID)
			}
		} else if r, ok := m.res[en.ID]; ok && r.state == stateSettled && r.gen == b.gen {
			delete(m.res, en.ID) // the file answers a retry from now on
		}
	}
	delete(m.applied, b.gen)
}

// sweep forgets reservations memory no longer needs: released ones once
// their hold expired, and held ones once they are past settling late
// (expiry plus the id retention). Settled ones go when their spend reaches
// the file. Expired holds count for nothing meanwhile. Callers hold mu.
func (m *memHolds) sweep(now time.Time, retention time.Duration) {
	if d := now.Sub(m.swept); d >= 0 && d < time.Second {
		return
	}
	m.swept = now
	for id, r := range m.res {
		if (r.state == stateReleased && r.expires.Before(now)) || (r.state == stateHeld && r.expires.Add(retention).Before(now)) {
			m.drop(id, r)
			delete(m.res, id)
		}
	}
}

// dropGeneration deletes the values of one journal generation from a map of
// per-account lists, and the accounts left with none.
func dropGeneration[T any](byAccount map[string][]T, ofGen func(T) bool) {
	for key, vs := range byAccount {
		vs = slices.DeleteFunc(vs, ofGen)
		if len(vs) == 0 {
			delete(byAccount, key)
		} else {
			byAccount[key] = vs
		}
	}
}
