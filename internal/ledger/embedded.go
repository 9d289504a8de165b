package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Embedded is a Ledger in one bbolt file, for a single proxy process.
// Reservations live in memory; Settle and Charge append their spend to a
// journal (see journal) before they return, and a flusher commits the
// journal to the file in fsync'd batches. So spend a caller was told about
// survives the process being killed at once, and the machine failing once
// FlushInterval has passed.
type Embedded struct {
	db      *bolt.DB
	opts    Options
	holds   *memHolds
	journal *journal
	flushAt int
	kick    chan struct{} // asks the flusher for an early flush
	stop    chan struct{}
	done    chan struct{}
	// flushMu lets one flush run at a time; retry is what a failed flush
	// left to apply.
	flushMu sync.Mutex
	retry   []batch
	swept   [4][]byte    // where prune stopped in each id bucket
	backlog atomic.Int32 // len(retry), for append
	closed  sync.Once
}

// EmbeddedOptions configure OpenEmbedded.
type EmbeddedOptions struct {
	Options
	// FlushInterval is how often journaled spend is committed to the file,
	// and so the most a failure of the machine (not of the process) can
	// lose. Default 25ms: the shorter, the fewer settled requests memory
	// keeps for the collector to scan (at 100ms a request cost 2-4us more
	// CPU in BenchmarkForward), for a commit and an fsync 40 times a second.
	FlushInterval time.Duration
	// FlushAt commits early once a journal file holds this many records,
	// which bounds memory. Default 4096.
	FlushAt int
	// OnFlushError hears of a failed commit of the journal; it is retried
	// every FlushInterval, and the journal keeps the spend meanwhile.
	OnFlushError func(error)
}

var _ Ledger = (*Embedded)(nil)

// OpenEmbedded opens or creates the ledger file at path and commits what
// the journal holds from before. Only one process may have it open; a
// second waits up to 5 seconds, then fails.
func OpenEmbedded(path string, o EmbeddedOptions) (*Embedded, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, InitialMmapSize: initialMmap})
	if err != nil {
		return nil, fmt.Errorf("ledger: opening %s: %w", path, err)
	}
	e := &Embedded{db: db, opts: o.Options.withDefaults(), holds: newMemHolds(), flushAt: o.FlushAt,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if e.flushAt <= 0 {
		e.flushAt = 4096
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketReservations, bucketCharges, bucketReservationChunks, bucketChargeChunks, bucketAccounts} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		e.holds.lastReservation, e.holds.lastCharge = idStoreOf(tx, false).lastID(), idStoreOf(tx, true).lastID()
		if tx.Bucket(bucketExpiry) != nil { // an index earlier versions kept
			return tx.DeleteBucket(bucketExpiry)
		}
		return nil
	})
	var left []batch
	if err == nil {
		e.journal, left, err = openJournal(path)
	}
	if err == nil && len(left) > 0 {
		e.retry = left
		err = e.flush()
	}
	if err != nil {
		if e.journal != nil {
			_ = e.journal.close()
		}
		_ = db.Close()
		return nil, fmt.Errorf("ledger: initialising %s: %w", path, err)
	}
	interval := o.FlushInterval
	if interval <= 0 {
		interval = 25 * time.Millisecond
	}
	go e.flusher(interval, o.OnFlushError)
	return e, nil
}

// Close commits what the journal holds and closes the file.
func (e *Embedded) Close() error {
	var err error
	e.closed.Do(func() {
		close(e.stop)
		<-e.done
		err = errors.Join(e.flush(), e.journal.close(), e.db.Close())
	})
	return err
}

// flusher commits the journal every interval, or sooner when asked.
func (e *Embedded) flusher(interval time.Duration, onError func(error)) {
	defer close(e.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		case <-e.kick:
		}
		// A failed flush keeps its batch and is retried on the next tick;
		// meanwhile memory counts the spend and the journal keeps it.
		if err := e.flush(); err != nil && onError != nil {
			onError(err)
		}
	}
}

// maxBacklog is how many journal files may wait for a commit that keeps
// failing before Settle and Charge fail too: the journal and memory would
// otherwise grow without bound, and the policy's failureMode decides.
const maxBacklog = 50

// errBacklog is what Settle and Charge return meanwhile.
var errBacklog = errors.New("ledger: the journal cannot be committed to the ledger file")

// append journals a Settle or Charge; record then updates memory under the
// journal's lock, so that no flush can take the entry before memory counts it.
func (e *Embedded) append(en journalEntry, record func(gen uint64)) error {
	if e.backlog.Load() >= maxBacklog {
		return errBacklog
	}
	n, err := e.journal.append(en, func(gen uint64) {
		e.holds.mu.Lock()
		defer e.holds.mu.Unlock()
		record(gen)
	})
	if err == nil && n >= e.flushAt {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// flush commits the journal's closed files to bbolt in one transaction,
// then forgets them.
func (e *Embedded) flush() error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	taken, takeErr := e.journal.take()
	batches := append(e.retry, taken...)
	if len(batches) == 0 {
		return takeErr
	}
	m := e.holds
	err := e.db.Update(func(tx *bolt.Tx) error {
		for _, b := range batches {
			if err := e.apply(tx, b); err != nil {
				return err
			}
		}
		// Once this commit is visible, readers count the spend from the file.
		m.mu.Lock()
		for _, b := range batches {
			m.applied[b.gen] = tx.ID()
			for _, en := range b.entries {
				last := &m.lastReservation
				if en.Charge {
					last = &m.lastCharge
				}
				*last = max(*last, en.ID)
			}
		}
		m.mu.Unlock()
		return nil
	})
	m.mu.Lock()
	clear(m.file)
	for _, b := range batches {
		if err != nil {
			delete(m.applied, b.gen)
		} else {
			m.flushed(b)
		}
	}
	m.mu.Unlock()
	if err != nil {
		e.retry = batches
		e.backlog.Store(int32(len(batches)))
		return fmt.Errorf("ledger: committing the journal: %w", err)
	}
	e.retry = nil
	e.backlog.Store(0)
	err = takeErr
	for _, b := range batches {
		err = errors.Join(err, e.journal.recycle(b))
	}
	return err
}

// apply commits journal entries that the file does not have yet. Spend is
// summed per account and counter first, so that a batch writes each once.
func (e *Embedded) apply(tx *bolt.Tx, b batch) error {
	entries := b.entries
	if len(entries) == 0 {
		return nil
	}
	// Pruning looks at twice as many keys as the commit adds, per bucket.
	var keys, chunks int
	for i, en := range entries {
		switch {
		case !chunked(en.ID):
			keys++
		case i == 0 || !chunked(entries[i-1].ID) || en.ID[:chunkPrefix] != entries[i-1].ID[:chunkPrefix]:
			chunks++
		}
	}
	if err := e.prune(tx, entries[len(entries)-1].at(), pruneBatch+2*keys, pruneBatch+2*chunks); err != nil {
		return err
	}
	ids := newIDWriter(tx, len(entries))
	type group struct {
		c  commit
		at time.Time
	}
	var groups []*group
	type groupKey struct{ account, counter string }
	index := map[groupKey]*group{}
	draws := map[string][]draw{}
	var drawOrder []string
	// Scratch for one entry at a time.
	var (
		accounts []Account
		amounts  []money.Micros
		cs       []commit
	)
	for i, en := range entries {
		if i%64 == 63 {
			// A batch is thousands of entries under load: let requests run
			// between slices of it rather than wait for the whole commit
			// (with one CPU, they otherwise queue behind it for ms).
			runtime.Gosched()
		}
		at := en.at()
		fresh, err := e.record(ids, en, at, b.replayed)
		if err != nil {
			return err
		}
		if !fresh {
			continue // applied before a crash left its journal behind
		}
		accounts, amounts = accounts[:0], amounts[:0]
		for _, h := range en.Holds {
			a, err := h.Account.account()
			if err != nil {
				return err
			}
			accounts, amounts = append(accounts, a), append(amounts, money.Micros(h.Amount))
		}
		cs = appendCommits(cs[:0], accounts, amounts, en.Usage)
		for _, c := range cs {
			if c.account.Kind == Prepaid {
				if draws[c.account.Key] == nil {
					drawOrder = append(drawOrder, c.account.Key)
				}
				draws[c.account.Key] = append(draws[c.account.Key], draw{ms(at), int64(c.amount)})
			}
			k := groupKey{c.account.Key, c.account.Window.writeCounter(at).key}
			if g := index[k]; g != nil {
				g.c.amount += c.amount
				g.c.usage = addUsage(g.c.usage, c.usage)
				continue
			}
			g := &group{c: c, at: at}
			index[k] = g
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		acct, err := openAccount(tx, g.c.account.Key)
		if err != nil {
			return err
		}
		if err := acct.add(g.c.account.Window, g.at, int64(g.c.amount), g.c.usage); err != nil {
			return err
		}
	}
	for _, key := range drawOrder {
		acct, err := openAccount(tx, key)
		if err != nil {
			return err
		}
		if err := acct.draw(draws[key]); err != nil {
			return err
		}
	}
	return ids.finish()
}

// records pairs accounts with amounts as a journal entry stores them.
func records(accounts []Account, amounts []money.Micros) []holdRecord {
	out := make([]holdRecord, len(accounts))
	for i, a := range accounts {
		out[i] = holdRecord{Account: recordAccount(a), Amount: int64(amounts[i])}
	}
	return out
}

// record stores the id of a journal entry; when asked to check, it reports
// false if the file, or this commit, has it already.
func (e *Embedded) record(ids *idWriter, en journalEntry, at time.Time, check bool) (bool, error) {
	if check {
		if _, ok := retained(ids.get(en.Charge, en.ID), at); ok {
			return false, nil
		}
	}
	expires := ms(at.Add(e.opts.IDRetention))
	v := encoder{binary.BigEndian.AppendUint64(ids.value[:0], uint64(expires))}
	if !en.Charge {
		v.remaining(*en.Decision)
	}
	ids.value = v.b // put copies it
	return true, ids.put(en.Charge, en.ID, expires, v.b)
}

// idRecord returns what is stored for an id, while it is retained at now.
func idRecord(s idStore, id string, now time.Time) ([]byte, bool) {
	return retained(s.get(id), now)
}

// retained returns a stored id's value after its expiry, unless it has
// expired at now.
func retained(v []byte, now time.Time) ([]byte, bool) {
	if len(v) < 8 || i64(v) <= ms(now) {
		return nil, false
	}
	return v[8:], true
}

// Reserve implements Ledger. Holds live in memory (see memHolds): reserving
// writes nothing, and reads the file only for what memory does not keep
// (see committed and lastReservation).
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
	if id <= m.lastReservation { // the file may have it
		var first Decision
		var found bool
		err := e.db.View(func(tx *bolt.Tx) (err error) {
			first, found, err = getReservation(tx, id, now)
			return err
		})
		if err != nil || found {
			return first, err // settled before: the first answer stands
		}
	}
	dec, err := e.decide(holds, now)
	if err == nil && dec.Admitted {
		m.add(id, holds, dec, now.Add(e.opts.HoldTTL))
	}
	return dec, err
}

// committed appends each hold's account as the file has it to out, reading the
// file only for accounts memory has not kept since the last commit.
// Callers hold e.holds.mu.
func (e *Embedded) committed(out []*fileAccount, holds []Hold) ([]*fileAccount, error) {
	m := e.holds
	base, missing := len(out), false
	for _, h := range holds {
		f := m.file[h.Account.Key]
		out = append(out, f)
		missing = missing || f == nil
	}
	if !missing {
		return out, nil
	}
	err := e.db.View(func(tx *bolt.Tx) error {
		for i, h := range holds {
			if out[base+i] = m.file[h.Account.Key]; out[base+i] != nil {
				continue
			}
			f, err := readAccount(tx, h.Account.Key)
			if err != nil {
				return err
			}
			m.file[h.Account.Key], out[base+i] = f, f
		}
		return nil
	})
	return out, err
}

// decide checks every hold against its account, counting earlier holds of
// the same reservation on the same account.
// Callers hold e.holds.mu, so that memory and the file agree.
func (e *Embedded) decide(holds []Hold, now time.Time) (Decision, error) {
	var buf [4]*fileAccount // requests hold a few accounts: no allocation
	accts, err := e.committed(buf[:0], holds)
	if err != nil {
		return Decision{}, err
	}
	// Per hold, the index of the first hold on the same account: a
	// reservation holds few accounts, so slices beat maps.
	first := make([]int, len(holds))
	avail := make([]int64, len(holds))
	resets := make([]time.Time, len(holds))
	extra := make([]int64, len(holds))
	for i, h := range holds {
		first[i] = slices.IndexFunc(holds[:i+1], func(o Hold) bool { return o.Account.Key == h.Account.Key })
		if first[i] < i {
			continue
		}
		mem := e.holds.account(h.Account.Key, h.Account.Window, now, accts[i].snapshot)
		avail[i], resets[i] = available(accts[i], h.Account, now, mem)
	}
	dec := Decision{Admitted: true, Refused: -1, Remaining: make([]money.Micros, len(holds))}
	for i, h := range holds {
		f := first[i]
		if int64(h.Amount) > avail[f]-extra[f] {
			dec.Admitted, dec.Refused, dec.ResetAt = false, i, resets[f]
			clear(extra) // nothing is held
			break
		}
		extra[f] += int64(h.Amount)
	}
	for i := range holds {
		dec.Remaining[i] = money.Micros(avail[first[i]] - extra[first[i]])
	}
	return dec, nil
}

// available is what an account can still hold at now, given what memory
// adds to the file, and for a Budget when its window next frees spend.
func available(acct *fileAccount, a Account, now time.Time, mem memAccount) (int64, time.Time) {
	if a.Kind == Prepaid {
		// Journaled spend draws on the grants as the file will draw it.
		nowMS := ms(now)
		from := nowMS
		if mem.prepaid > 0 {
			from = min(from, mem.firstMS)
		}
		var buf [4]liveGrant // an account has a few grants: no allocation
		gs := appendLiveGrants(buf[:0], acct.grants, from)
		debt := acct.debt
		switch {
		case mem.prepaid == 0:
		case expiresWithin(gs, mem.firstMS, mem.lastMS):
			debt += consume(gs, mem.draws()...)
		default: // every grant is live for every spend: the order is moot
			debt += consume(gs, draw{mem.firstMS, mem.prepaid})
		}
		return unused(gs, nowMS) - debt - mem.held, time.Time{}
	}
	total, oldest := acct.read(a.Window, now)
	if oldest.IsZero() {
		oldest = mem.oldest
	}
	reset := oldest
	if a.Window.Period != "" {
		_, reset = a.Window.Bounds(now)
	}
	if !reset.IsZero() {
		reset = fromMS(ms(reset)) // the precision and zone Redis gives
	}
	return int64(a.Limit) - total.spent - mem.window.spent - mem.held, reset
}

// Settle implements Ledger: one journal write, no fsync of its own.
func (e *Embedded) Settle(ctx context.Context, id string, actual []money.Micros, usage Usage, now time.Time) error {
	if err := validateSettle(id, actual, usage); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
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
	case ok && len(actual) != len(r.holds):
		m.mu.Unlock()
		return invalid("settle %q: %d amounts for %d holds", id, len(actual), len(r.holds))
	case ok:
		r.state = stateSettling
	}
	m.mu.Unlock()
	if !ok {
		// Not in memory: settled long ago (answered from the file) or never reserved.
		var known bool
		err := e.db.View(func(tx *bolt.Tx) error {
			_, known, _ = getReservation(tx, id, now)
			return nil
		})
		if err != nil || known {
			return err
		}
		return fmt.Errorf("%w: %q", ErrUnknownReservation, id)
	}
	accounts := make([]Account, len(r.holds))
	for i, h := range r.holds {
		accounts[i] = h.Account
	}
	en := journalEntry{ID: id, At: now.UnixNano(), Holds: records(accounts, actual), Usage: usage, Decision: &r.decision}
	err := e.append(en, func(gen uint64) {
		// The holds become spend in one step: reads never miss both.
		m.drop(id, r)
		m.spend(gen, commits(accounts, actual, usage), now)
		r.state, r.gen = stateSettled, gen
	})
	if err != nil {
		m.mu.Lock()
		r.state = stateHeld // nothing journaled: a retry may settle
		m.mu.Unlock()
	}
	return err
}

// Charge implements Ledger: one journal write, like Settle.
func (e *Embedded) Charge(ctx context.Context, id string, charges []Hold, usage Usage, now time.Time) error {
	if err := validateHolds(id, charges); err != nil {
		return err
	}
	if err := validateUsage(usage); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m := e.holds
	m.mu.Lock()
	if _, ok := m.charged[id]; ok {
		m.mu.Unlock()
		return nil // journaled, or being journaled: counted once
	}
	m.charged[id] = 0
	maybeInFile := id <= m.lastCharge // else the file cannot have it
	m.mu.Unlock()
	var seen bool
	var err error
	if maybeInFile {
		err = e.db.View(func(tx *bolt.Tx) error {
			_, seen = idRecord(idStoreOf(tx, true), id, now)
			return nil
		})
	}
	if err == nil && !seen {
		accounts, amounts := holdAccounts(charges)
		en := journalEntry{Charge: true, ID: id, At: now.UnixNano(), Holds: records(accounts, amounts), Usage: usage}
		err = e.append(en, func(gen uint64) {
			m.spend(gen, commits(accounts, amounts, usage), now)
			m.charged[id] = gen
		})
	}
	if err != nil || seen {
		m.mu.Lock()
		delete(m.charged, id)
		m.mu.Unlock()
	}
	return err
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

// Grant implements Ledger. Grants are rare: each commits at once.
func (e *Embedded) Grant(ctx context.Context, account string, g Grant, now time.Time) error {
	if err := validateGrant(account, g); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Journaled spend commits first: a grant pays the debt before it, and
	// memory draws only spend that came after every grant in the file.
	if err := e.flush(); err != nil {
		return err
	}
	defer func() { // the file changed under what memory keeps of it
		e.holds.mu.Lock()
		clear(e.holds.file)
		e.holds.mu.Unlock()
	}()
	return e.db.Update(func(tx *bolt.Tx) error {
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
	m := e.holds
	m.mu.Lock()
	defer m.mu.Unlock()
	accts, err := e.committed(nil, []Hold{{Account: a}})
	if err != nil {
		return Snapshot{}, err
	}
	mem := m.account(a.Key, a.Window, now, accts[0].snapshot)
	total, _ := accts[0].read(a.Window, now)
	avail, _ := available(accts[0], a, now, mem)
	snap := Snapshot{
		Spent:     money.Micros(total.spent + mem.window.spent),
		Held:      money.Micros(mem.held),
		Remaining: money.Micros(avail),
		Usage:     addUsage(total.usage, mem.window.usage),
	}
	snap.WindowStart, _ = a.Window.Bounds(now)
	return snap, nil
}

// getReservation returns the first decision of a reservation settled and
// retained at now.
func getReservation(tx *bolt.Tx, id string, now time.Time) (Decision, bool, error) {
	v, ok := idRecord(idStoreOf(tx, false), id, now)
	if !ok {
		return Decision{}, false, nil
	}
	d := decoder{b: v}
	dec := d.admitted()
	return dec, d.err == nil, d.err
}

// prune drops id records past their retention. Lookups already ignore
// them (see idRecord); this only keeps the file from growing. It goes
// through each id bucket in key order, a limit of keys per call, from where
// the last call stopped, and starts over at the end: a flush looks at twice
// as many keys as it adds to each, so every id is looked at within about
// half a retention of its expiry, whatever order the ids come in. A chunk
// goes once its last record expired.
func (e *Embedded) prune(tx *bolt.Tx, now time.Time, keys, chunks int) error {
	for i, name := range [][]byte{bucketReservations, bucketCharges, bucketReservationChunks, bucketChargeChunks} {
		limit := keys
		if i >= 2 {
			limit = chunks
		}
		b := tx.Bucket(name)
		c := b.Cursor()
		k, v := c.First()
		if from := e.swept[i]; from != nil {
			if k, v = c.Seek(from); k != nil && bytes.Equal(k, from) {
				k, v = c.Next()
			}
		}
		var dead [][]byte
		for n := 0; k != nil && n < limit; k, v = c.Next() {
			if len(v) >= 8 && i64(v) <= ms(now) {
				dead = append(dead, bytes.Clone(k))
			}
			e.swept[i], n = append(e.swept[i][:0], k...), n+1
		}
		if k == nil {
			e.swept[i] = nil // start over next time
		}
		if err := deleteKeys(b, dead); err != nil {
			return err
		}
	}
	return nil
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
		if err := validateAmount("actual amount", "", m); err != nil {
			return err
		}
	}
	return validateUsage(usage)
}

// initialMmap is how much of the ledger file bbolt maps at open: address
// space, not memory. Mapping more later (the file grows with every
// request's id) copies every node of the commit under way off the old
// mapping, and blocks readers meanwhile.
const initialMmap = 1 << 30
