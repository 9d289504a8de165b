package ledger

import (
	"sync"
	"time"
)

// memHolds keeps the Embedded ledger's reservations in memory. One process
// owns the file, so holds need not outlive it: a hold lost in a crash is a
// request that was never served, and only settled spend must be durable.
// Keeping them here spares every request a second fsync'd commit.
type memHolds struct {
	mu  sync.Mutex
	res map[string]*memReservation
	// swept is when sweep last ran: it scans every reservation, so it runs
	// at most once a second, not on every call.
	swept time.Time
	// byAccount sums live holds per account key: id -> hold.
	byAccount map[string]map[string]memHold
}

type memReservation struct {
	record   reservationRecord
	decision Decision
	state    string // stateHeld, stateSettling, stateSettled or stateReleased
	expires  time.Time
}

type memHold struct {
	amount    int64
	expiresMS int64
	// settledIn is the id of the write transaction that commits this hold's
	// spend, once its settle is committing: a read snapshot at or past it
	// already counts the spend, and must not count the hold too.
	settledIn int
}

// stateSettling marks a reservation whose settle is being committed, so that
// a concurrent settle of the same id commits nothing.
const stateSettling = "settling"

func newMemHolds() *memHolds {
	return &memHolds{res: map[string]*memReservation{}, byAccount: map[string]map[string]memHold{}}
}

// held sums the live holds of an account at nowMS, as seen from the read
// snapshot with transaction id snapshot. Callers hold mu.
func (m *memHolds) held(key string, nowMS int64, snapshot int) int64 {
	var sum int64
	for _, h := range m.byAccount[key] {
		if h.expiresMS > nowMS && (h.settledIn == 0 || h.settledIn > snapshot) {
			sum += h.amount
		}
	}
	return sum
}

// settling marks a reservation's holds as committed by write transaction
// txID (0 undoes it, when the commit failed). Callers hold mu.
func (m *memHolds) settling(id string, r *memReservation, txID int) {
	for i, h := range r.record.Holds {
		k := holdID(id, i)
		if mh, ok := m.byAccount[h.Account.Key][k]; ok {
			mh.settledIn = txID
			m.byAccount[h.Account.Key][k] = mh
		}
	}
}

// add records an admitted reservation and its holds. Callers hold mu.
func (m *memHolds) add(id string, holds []Hold, d Decision, expires time.Time) {
	m.res[id] = &memReservation{record: newReservationRecord(holds, expires), decision: d, state: stateHeld, expires: expires}
	for i, h := range holds {
		if m.byAccount[h.Account.Key] == nil {
			m.byAccount[h.Account.Key] = map[string]memHold{}
		}
		m.byAccount[h.Account.Key][holdID(id, i)] = memHold{amount: int64(h.Amount), expiresMS: ms(expires)}
	}
}

// drop removes a reservation's holds. Callers hold mu.
func (m *memHolds) drop(id string, r *memReservation) {
	for i, h := range r.record.Holds {
		delete(m.byAccount[h.Account.Key], holdID(id, i))
		if len(m.byAccount[h.Account.Key]) == 0 {
			delete(m.byAccount, h.Account.Key)
		}
	}
}

// sweep forgets what memory no longer needs: finished reservations once
// their hold expired (the file answers for settled ones from then on), and
// held ones once they are past settling late (expiry plus the id retention).
// Expired holds count for nothing meanwhile. Callers hold mu.
func (m *memHolds) sweep(now time.Time, retention time.Duration) {
	if d := now.Sub(m.swept); d >= 0 && d < time.Second {
		return
	}
	m.swept = now
	for id, r := range m.res {
		done := r.state == stateSettled || r.state == stateReleased
		if (done && r.expires.Before(now)) || (r.state == stateHeld && r.expires.Add(retention).Before(now)) {
			m.drop(id, r)
			delete(m.res, id)
		}
	}
}

func holdID(id string, i int) string {
	return id + "\x00" + string(rune('0'+i%10)) + string(rune('0'+i/10))
}
