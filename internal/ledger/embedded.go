package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Embedded is a Ledger in one bbolt file, for a single proxy process. Every
// mutation is on disk (bbolt fsyncs on commit) before its call returns, and
// concurrent calls share a commit and its fsync through db.Batch.
type Embedded struct {
	db      *bolt.DB
	opts    Options
	writers atomic.Int64 // writes in flight
	holds   *memHolds
}

// EmbeddedOptions configure OpenEmbedded.
type EmbeddedOptions struct {
	Options
	// BatchDelay is the longest a write that overlaps others waits for more
	// to share its commit (a lone write never waits). Default 1ms, about one
	// fsync: bbolt's own 10ms made concurrent requests slower, not faster,
	// in BenchmarkReserveSettle.
	BatchDelay time.Duration
}

var _ Ledger = (*Embedded)(nil)

// OpenEmbedded opens or creates the ledger file at path. Only one process
// may have it open; a second waits up to 5 seconds, then fails.
func OpenEmbedded(path string, o EmbeddedOptions) (*Embedded, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("ledger: opening %s: %w", path, err)
	}
	db.MaxBatchDelay = time.Millisecond
	if o.BatchDelay > 0 {
		db.MaxBatchDelay = o.BatchDelay
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketReservations, bucketCharges, bucketExpiry, bucketAccounts} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ledger: initialising %s: %w", path, err)
	}
	return &Embedded{db: db, opts: o.Options.withDefaults(), holds: newMemHolds()}, nil
}

// Close closes the file.
func (e *Embedded) Close() error { return e.db.Close() }

// update runs fn in a write transaction. A write with no other in flight
// commits at once; overlapping writes share a commit and its fsync through
// db.Batch, which waits up to BatchDelay to gather them. bbolt may run a
// batched fn more than once (when another fn of the batch fails), so fn sets
// its results afresh each time, and returns domain errors through its result
// rather than as an error, which would roll back the whole batch.
func (e *Embedded) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer e.writers.Add(-1)
	if e.writers.Add(1) == 1 {
		return e.db.Update(fn)
	}
	return e.db.Batch(fn)
}

// Reserve implements Ledger. Holds live in memory (see memHolds): reserving
// reads the file and writes nothing, so it costs no fsync.
func (e *Embedded) Reserve(ctx context.Context, id string, holds []Hold, now time.Time) (Decision, error) {
	if err := validateHolds(id, holds); err != nil {
		return Decision{}, err
	}
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	m := e.holds
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now, e.opts.IDRetention)
	if r, ok := m.res[id]; ok {
		return r.decision, nil
	}
	var dec Decision
	err := e.db.View(func(tx *bolt.Tx) error {
		if s, ok, err := getReservation(tx, id); err != nil || ok {
			dec = s.Decision // settled before: the first answer stands
			return err
		}
		var err error
		dec, err = e.decide(tx, holds, now)
		if err == nil && dec.Admitted {
			m.add(id, holds, dec, now.Add(e.opts.HoldTTL))
		}
		return err
	})
	if err != nil {
		return Decision{}, err
	}
	return dec, nil
}

// decide checks every hold against its account, counting earlier holds of
// the same reservation on the same account.
// Callers hold e.holds.mu, so that memory holds and the file agree.
func (e *Embedded) decide(tx *bolt.Tx, holds []Hold, now time.Time) (Decision, error) {
	nowMS := ms(now)
	avail := map[string]int64{}
	resets := map[string]time.Time{}
	for _, h := range holds {
		key := h.Account.Key
		if _, ok := avail[key]; ok {
			continue
		}
		acct, err := openAccount(tx, key)
		if err != nil {
			return Decision{}, err
		}
		if avail[key], resets[key], err = available(acct, h.Account, now, e.holds.held(key, nowMS, tx.ID())); err != nil {
			return Decision{}, err
		}
	}
	dec := Decision{Admitted: true, Refused: -1, Remaining: make([]money.Micros, len(holds))}
	extra := map[string]int64{}
	for i, h := range holds {
		key := h.Account.Key
		if int64(h.Amount) > avail[key]-extra[key] {
			dec.Admitted, dec.Refused, dec.ResetAt = false, i, resets[key]
			clear(extra) // nothing is held
			break
		}
		extra[key] += int64(h.Amount)
	}
	for i, h := range holds {
		dec.Remaining[i] = money.Micros(avail[h.Account.Key] - extra[h.Account.Key])
	}
	return dec, nil
}

// available is what an account can still hold at now, given what memory
// holds on it, and for a Budget when its window next frees spend.
func available(acct accountTx, a Account, now time.Time, memHeld int64) (int64, time.Time, error) {
	nowMS := ms(now)
	held := acct.held(nowMS) + memHeld
	if a.Kind == Prepaid {
		gs, err := acct.grants(nowMS)
		return unused(gs) - acct.debt() - held, time.Time{}, err
	}
	total, oldest := acct.read(a.Window, now)
	reset := oldest
	if a.Window.Period != "" {
		_, reset = a.Window.Bounds(now)
	}
	if !reset.IsZero() {
		reset = fromMS(ms(reset)) // the precision and zone Redis gives
	}
	return int64(a.Limit) - total.spent - held, reset, nil
}

// Settle implements Ledger: one commit, the only fsync of a request.
func (e *Embedded) Settle(ctx context.Context, id string, actual []money.Micros, usage Usage, now time.Time) error {
	if err := validateSettle(id, actual, usage); err != nil {
		return err
	}
	m := e.holds
	m.mu.Lock()
	m.sweep(now, e.opts.IDRetention)
	r, ok := m.res[id]
	switch {
	case ok && r.state == stateReleased:
		m.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrReleased, id)
	case ok && r.state != stateHeld:
		m.mu.Unlock()
		return nil // settled, or being settled: counted once
	case ok && len(actual) != len(r.record.Holds):
		m.mu.Unlock()
		return invalid("settle %q: %d amounts for %d holds", id, len(actual), len(r.record.Holds))
	case ok:
		r.state = stateSettling
	}
	m.mu.Unlock()
	if !ok {
		// Not in memory: settled long ago (answered from the file) or never reserved.
		var known bool
		err := e.db.View(func(tx *bolt.Tx) error {
			_, known, _ = getReservation(tx, id)
			return nil
		})
		if err != nil || known {
			return err
		}
		return fmt.Errorf("%w: %q", ErrUnknownReservation, id)
	}
	accounts, err := r.record.accounts()
	if err == nil {
		err = e.update(ctx, func(tx *bolt.Tx) error {
			if err := e.prune(tx, now); err != nil {
				return err
			}
			for _, c := range commits(accounts, actual, usage) {
				if err := commitSpend(tx, c, now); err != nil {
					return err
				}
			}
			// Once this commit is visible, readers count its spend, not its holds.
			m.mu.Lock()
			m.settling(id, r, tx.ID())
			m.mu.Unlock()
			// The record answers a repeated settle once memory forgot it.
			return e.putReservation(tx, id, storedReservation{Record: r.record, State: stateSettled, Decision: r.decision}, now)
		})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		r.state = stateHeld // nothing committed: a retry may settle
		m.settling(id, r, 0)
		return err
	}
	// Settled: the file's record answers a repeat from now on.
	m.drop(id, r)
	delete(m.res, id)
	return nil
}

// Charge implements Ledger.
func (e *Embedded) Charge(ctx context.Context, id string, charges []Hold, usage Usage, now time.Time) error {
	if err := validateHolds(id, charges); err != nil {
		return err
	}
	if err := validateUsage(usage); err != nil {
		return err
	}
	return e.update(ctx, func(tx *bolt.Tx) error {
		if err := e.prune(tx, now); err != nil {
			return err
		}
		seen := tx.Bucket(bucketCharges)
		if seen.Get([]byte(id)) != nil {
			return nil
		}
		if err := seen.Put([]byte(id), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketExpiry).Put(expiryKey(now.Add(e.opts.IDRetention), 'c', id), nil); err != nil {
			return err
		}
		accounts, amounts := holdAccounts(charges)
		for _, c := range commits(accounts, amounts, usage) {
			if err := commitSpend(tx, c, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// Release implements Ledger. It touches only memory.
func (e *Embedded) Release(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m := e.holds
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.res[id]; ok && r.state == stateHeld {
		m.drop(id, r)
		r.state = stateReleased
	}
	return nil
}

// Grant implements Ledger.
func (e *Embedded) Grant(ctx context.Context, account string, g Grant, now time.Time) error {
	if err := validateGrant(account, g); err != nil {
		return err
	}
	return e.update(ctx, func(tx *bolt.Tx) error {
		acct, err := openAccount(tx, account)
		if err != nil {
			return err
		}
		granted := acct.sub(bucketGranted)
		if granted.Get([]byte(g.ID)) != nil {
			return nil
		}
		if err := granted.Put([]byte(g.ID), nil); err != nil {
			return err
		}
		lg := liveGrant{ID: g.ID, Amount: int64(g.Amount), ExpiresMS: ms(g.ExpiresAt)}
		if err := acct.saveGrants([]liveGrant{lg}, ms(now)); err != nil {
			return err
		}
		return acct.payDebt(ms(now))
	})
}

// Balance implements Ledger.
func (e *Embedded) Balance(ctx context.Context, a Account, now time.Time) (Snapshot, error) {
	if err := a.validate(); err != nil {
		return Snapshot{}, err
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	var snap Snapshot
	e.holds.mu.Lock()
	defer e.holds.mu.Unlock()
	var memHeld int64
	err := e.db.View(func(tx *bolt.Tx) error {
		memHeld = e.holds.held(a.Key, ms(now), tx.ID())
		acct, _ := openAccount(tx, a.Key)
		total, _ := acct.read(a.Window, now)
		avail, _, err := available(acct, a, now, memHeld)
		snap = Snapshot{
			Spent:     money.Micros(total.spent),
			Held:      money.Micros(acct.held(ms(now)) + memHeld),
			Remaining: money.Micros(avail),
			Usage:     total.usage,
		}
		snap.WindowStart, _ = a.Window.Bounds(now)
		return err
	})
	return snap, err
}

// commitSpend adds spend and usage to an account's window and, for a
// prepaid account, draws the spend from its grants; what they cannot cover
// becomes debt.
func commitSpend(tx *bolt.Tx, c commit, now time.Time) error {
	acct, err := openAccount(tx, c.account.Key)
	if err != nil {
		return err
	}
	if err := acct.add(c.account.Window, now, int64(c.amount), c.usage); err != nil {
		return err
	}
	if c.account.Kind != Prepaid {
		return nil
	}
	nowMS := ms(now)
	gs, err := acct.grants(nowMS)
	if err != nil {
		return err
	}
	if left := consume(gs, int64(c.amount)); left > 0 {
		if err := acct.b.Put(keyDebt, u64(acct.debt()+left)); err != nil {
			return err
		}
	}
	return acct.saveGrants(gs, nowMS)
}

func dropHolds(tx *bolt.Tx, id string, r reservationRecord) error {
	for i, h := range r.Holds {
		acct, err := openAccount(tx, h.Account.Key)
		if err != nil {
			return err
		}
		if err := acct.sub(bucketHolds).Delete(holdKey(r.ExpiresMS, i, id)); err != nil {
			return err
		}
	}
	return nil
}

func getReservation(tx *bolt.Tx, id string) (storedReservation, bool, error) {
	v := tx.Bucket(bucketReservations).Get([]byte(id))
	if v == nil {
		return storedReservation{}, false, nil
	}
	var s storedReservation
	err := json.Unmarshal(v, &s)
	return s, err == nil, err
}

// putReservation stores a reservation; a non-zero created also indexes it
// for dropping after the id retention.
func (e *Embedded) putReservation(tx *bolt.Tx, id string, s storedReservation, created time.Time) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketReservations).Put([]byte(id), v); err != nil {
		return err
	}
	if created.IsZero() {
		return nil
	}
	return tx.Bucket(bucketExpiry).Put(expiryKey(created.Add(e.opts.IDRetention), 'r', id), nil)
}

func expiryKey(at time.Time, typ byte, id string) []byte {
	return append(append(u64(ms(at)), typ), id...)
}

// prune drops a bounded number of id records older than the retention.
func (e *Embedded) prune(tx *bolt.Tx, now time.Time) error {
	index := tx.Bucket(bucketExpiry)
	var dead [][]byte
	c := index.Cursor()
	for k, _ := c.First(); k != nil && len(dead) < pruneBatch && i64(k) <= ms(now); k, _ = c.Next() {
		dead = append(dead, append([]byte(nil), k...))
	}
	for _, k := range dead {
		from := bucketReservations
		if k[8] == 'c' {
			from = bucketCharges
		}
		if err := tx.Bucket(from).Delete(k[9:]); err != nil {
			return err
		}
	}
	return deleteKeys(index, dead)
}

// stateError is Settle's answer for a reservation that is not held.
func stateError(id, state string) error {
	switch state {
	case stateReleased:
		return fmt.Errorf("%w: %q", ErrReleased, id)
	}
	return nil
}

func validateSettle(id string, actual []money.Micros, usage Usage) error {
	if id == "" {
		return invalid("id is empty")
	}
	for _, m := range actual {
		if err := validateAmount("actual amount", m); err != nil {
			return err
		}
	}
	return validateUsage(usage)
}
