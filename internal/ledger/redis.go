package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Redis is a Ledger on a Redis server, shared by any number of proxy
// processes: each operation is one atomic Lua script (redis_scripts.go).
// Durability is the server's: configure its persistence (AOF with fsync)
// for spend to survive a Redis restart.
type Redis struct {
	c      redis.UniversalClient
	opts   Options
	prefix string
	// local keeps the records of reservations this process admitted, so
	// that settling or releasing them needs no read first: a round trip
	// less per request. The scripts check the state in Redis regardless.
	local     sync.Map // id -> localRecord
	lastSweep atomic.Int64
}

type localRecord struct {
	rec     reservationRecord
	expires time.Time
}

// RedisOptions configure NewRedis.
type RedisOptions struct {
	Options
	// KeyPrefix starts every key, so that several ledgers can share a
	// server. Default "tollgate:ledger:".
	KeyPrefix string
}

var _ Ledger = (*Redis)(nil)

// NewRedis returns a ledger on the client's server. The ledger owns the
// client: Close closes it.
func NewRedis(client redis.UniversalClient, o RedisOptions) *Redis {
	if o.KeyPrefix == "" {
		o.KeyPrefix = "tollgate:ledger:"
	}
	return &Redis{c: client, opts: o.Options.withDefaults(), prefix: o.KeyPrefix}
}

// Close closes the client.
func (r *Redis) Close() error { return r.c.Close() }

// key names one piece of an account's state; the length prefix keeps
// account keys that contain ':' from colliding.
func (r *Redis) key(account, part string) string {
	return r.prefix + "acct:" + strconv.Itoa(len(account)) + ":" + account + ":" + part
}

func (r *Redis) reservationKey(id string) string { return r.prefix + "res:" + id }

// accountKeys are the holds, grants and debt keys, in the scripts' order.
func (r *Redis) accountKeys(account string) []string {
	return []string{r.key(account, "holds"), r.key(account, "grants"), r.key(account, "debt")}
}

func (r *Redis) counterKey(account string, c counter) string { return r.key(account, "c:"+c.key) }

// holdMember names a hold in its account's sorted set; the amount comes
// first so that the scripts can sum holds without another lookup.
func holdMember(amount int64, index int, id string) string {
	return strconv.FormatInt(amount, 10) + "|" + strconv.Itoa(index) + "|" + id
}

func kindCode(k Kind) string {
	if k == Prepaid {
		return "P"
	}
	return "B"
}

// Reserve implements Ledger.
func (r *Redis) Reserve(ctx context.Context, id string, holds []Hold, now time.Time) (Decision, error) {
	if err := validateHolds(id, holds); err != nil {
		return Decision{}, err
	}
	expires := now.Add(r.opts.HoldTTL)
	rec, err := json.Marshal(newReservationRecord(holds, expires))
	if err != nil {
		return Decision{}, err
	}
	keys := []string{r.reservationKey(id)}
	args := []any{ms(now), ms(expires), r.opts.IDRetention.Milliseconds(), rec, len(holds)}
	for i, h := range holds {
		a := h.Account
		var cs []counter
		var reset int64
		if a.Kind == Budget {
			cs = a.Window.readCounters(now)
			if a.Window.Period != "" {
				_, end := a.Window.Bounds(now)
				reset = ms(end)
			}
		}
		keys = append(keys, r.accountKeys(a.Key)...)
		args = append(args, kindCode(a.Kind), int64(h.Amount), int64(a.Limit), holdMember(int64(h.Amount), i, id), reset, len(cs))
		for _, c := range cs {
			keys = append(keys, r.counterKey(a.Key, c))
			args = append(args, ms(c.until))
		}
	}
	out, err := reserveScript.Run(ctx, r.c, keys, args...).Text()
	if err != nil {
		return Decision{}, fmt.Errorf("ledger: reserve %q: %w", id, err)
	}
	d, err := parseDecision(out)
	if err == nil && d.Admitted {
		r.sweepLocal(now)
		r.local.Store(id, localRecord{rec: newReservationRecord(holds, expires), expires: expires})
	}
	return d, err
}

// sweepLocal forgets, at most once a minute, local records whose holds
// expired without a settle or a release (Redis has them still).
func (r *Redis) sweepLocal(now time.Time) {
	last := r.lastSweep.Load()
	if now.UnixNano()-last < int64(time.Minute) || !r.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	r.local.Range(func(id, v any) bool {
		if v.(localRecord).expires.Before(now) {
			r.local.Delete(id)
		}
		return true
	})
}

// held returns a reservation's record and state for settling or releasing
// it: from memory when this process admitted it (held, as far as it
// knows), else from Redis; the state is empty when the id is unknown.
func (r *Redis) held(ctx context.Context, id string) (reservationRecord, string, error) {
	if v, found := r.local.LoadAndDelete(id); found {
		return v.(localRecord).rec, stateHeld, nil
	}
	st, rec, _, err := r.record(ctx, id)
	return rec, st, err
}

// parseDecision reads "<admitted>|<refused>|<reset ms>|<remaining,...>".
func parseDecision(s string) (Decision, error) {
	parts := strings.Split(s, "|")
	if len(parts) != 4 {
		return Decision{}, fmt.Errorf("ledger: bad decision %q", s)
	}
	refused, err1 := strconv.Atoi(parts[1])
	reset, err2 := strconv.ParseInt(parts[2], 10, 64)
	d := Decision{Admitted: parts[0] == "1", Refused: refused, ResetAt: fromMS(reset)}
	for _, f := range strings.Split(parts[3], ",") {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return Decision{}, fmt.Errorf("ledger: bad decision %q", s)
		}
		d.Remaining = append(d.Remaining, money.Micros(v))
	}
	if err := errors.Join(err1, err2); err != nil {
		return Decision{}, fmt.Errorf("ledger: bad decision %q: %w", s, err)
	}
	return d, nil
}

// record reads a reservation's state and record; ok is false when unknown.
func (r *Redis) record(ctx context.Context, id string) (state string, rec reservationRecord, ok bool, err error) {
	vals, err := r.c.HMGet(ctx, r.reservationKey(id), "st", "rec").Result()
	if err != nil {
		return "", rec, false, fmt.Errorf("ledger: reading %q: %w", id, err)
	}
	st, _ := vals[0].(string)
	raw, _ := vals[1].(string)
	if st == "" {
		return "", rec, false, nil
	}
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return "", rec, false, fmt.Errorf("ledger: reading %q: %w", id, err)
	}
	return st, rec, true, nil
}

// commitArgs appends the keys and arguments of commit in luaPrelude.
func (r *Redis) commitArgs(keys []string, args []any, c commit, member string, now time.Time) ([]string, []any) {
	a := c.account
	wc := a.Window.writeCounter(now)
	keys = append(append(keys, r.accountKeys(a.Key)...), r.counterKey(a.Key, wc))
	u := c.usage
	return keys, append(args, kindCode(a.Kind), int64(c.amount), member, counterTTL(a.Window, now).Milliseconds(),
		u.Requests, u.InputTokens, u.CachedInputTokens, u.OutputTokens)
}

// counterTTL is how long Redis keeps a counter: a rolling bucket while a
// read can reach it, a calendar window for one more window length after it
// ends (for displays of the last window); lifetime counters forever (0).
func counterTTL(w Window, now time.Time) time.Duration {
	if w.Rolling > 0 {
		return w.Rolling + 2*w.bucketWidth()
	}
	if w.Period == "" {
		return 0
	}
	start, end := w.Bounds(now)
	return max(end.Sub(now)+end.Sub(start), time.Millisecond)
}

// Settle implements Ledger.
func (r *Redis) Settle(ctx context.Context, id string, actual []money.Micros, usage Usage, now time.Time) error {
	if err := validateSettle(id, actual, usage); err != nil {
		return err
	}
	// The record never changes once written, so reading it first is safe;
	// the script checks the state again atomically.
	rec, st, err := r.held(ctx, id)
	switch {
	case err != nil:
		return err
	case st == "":
		return fmt.Errorf("%w: %q", ErrUnknownReservation, id)
	case st != stateHeld:
		return stateError(id, st)
	case len(actual) != len(rec.Holds):
		return invalid("settle %q: %d amounts for %d holds", id, len(actual), len(rec.Holds))
	}
	accounts, err := rec.accounts()
	if err != nil {
		return err
	}
	keys := []string{r.reservationKey(id)}
	args := []any{ms(now), len(accounts), r.opts.IDRetention.Milliseconds()}
	for i, c := range commits(accounts, actual, usage) {
		keys, args = r.commitArgs(keys, args, c, holdMember(rec.Holds[i].Amount, i, id), now)
	}
	out, err := settleScript.Run(ctx, r.c, keys, args...).Text()
	if err != nil {
		return fmt.Errorf("ledger: settle %q: %w", id, err)
	}
	if out == "unknown" {
		return fmt.Errorf("%w: %q", ErrUnknownReservation, id)
	}
	return stateError(id, out)
}

// Charge implements Ledger.
func (r *Redis) Charge(ctx context.Context, id string, charges []Hold, usage Usage, now time.Time) error {
	if err := validateHolds(id, charges); err != nil {
		return err
	}
	if err := validateUsage(usage); err != nil {
		return err
	}
	keys := []string{r.prefix + "chg:" + id}
	args := []any{ms(now), len(charges), r.opts.IDRetention.Milliseconds()}
	accounts, amounts := holdAccounts(charges)
	for _, c := range commits(accounts, amounts, usage) {
		keys, args = r.commitArgs(keys, args, c, "", now)
	}
	if err := chargeScript.Run(ctx, r.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("ledger: charge %q: %w", id, err)
	}
	return nil
}

// Release implements Ledger.
func (r *Redis) Release(ctx context.Context, id string) error {
	rec, st, err := r.held(ctx, id)
	if err != nil || st != stateHeld {
		return err
	}
	keys := []string{r.reservationKey(id)}
	args := make([]any, 0, len(rec.Holds))
	for i, h := range rec.Holds {
		keys = append(keys, r.key(h.Account.Key, "holds"))
		args = append(args, holdMember(h.Amount, i, id))
	}
	if err := releaseScript.Run(ctx, r.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("ledger: release %q: %w", id, err)
	}
	return nil
}

// Grant implements Ledger.
func (r *Redis) Grant(ctx context.Context, account string, g Grant, now time.Time) error {
	if err := validateGrant(account, g); err != nil {
		return err
	}
	keys := []string{r.key(account, "grants"), r.key(account, "granted"), r.key(account, "debt")}
	err := grantScript.Run(ctx, r.c, keys, g.ID, int64(g.Amount), ms(g.ExpiresAt), ms(now)).Err()
	if err != nil {
		return fmt.Errorf("ledger: grant %q to %q: %w", g.ID, account, err)
	}
	return nil
}

// Balance implements Ledger.
func (r *Redis) Balance(ctx context.Context, a Account, now time.Time) (Snapshot, error) {
	if err := a.validate(); err != nil {
		return Snapshot{}, err
	}
	keys := r.accountKeys(a.Key)
	for _, c := range a.Window.readCounters(now) {
		keys = append(keys, r.counterKey(a.Key, c))
	}
	vals, err := balanceScript.Run(ctx, r.c, keys, kindCode(a.Kind), int64(a.Limit), ms(now)).StringSlice()
	if err != nil {
		return Snapshot{}, fmt.Errorf("ledger: balance of %q: %w", a.Key, err)
	}
	n := make([]int64, len(vals))
	for i, v := range vals {
		if n[i], err = strconv.ParseInt(v, 10, 64); err != nil {
			return Snapshot{}, fmt.Errorf("ledger: balance of %q: %w", a.Key, err)
		}
	}
	if len(n) != 7 {
		return Snapshot{}, fmt.Errorf("ledger: balance of %q: %d values", a.Key, len(n))
	}
	snap := Snapshot{
		Spent: money.Micros(n[0]), Held: money.Micros(n[1]), Remaining: money.Micros(n[2]),
		Usage: Usage{Requests: n[3], InputTokens: n[4], CachedInputTokens: n[5], OutputTokens: n[6]},
	}
	snap.WindowStart, _ = a.Window.Bounds(now)
	return snap, nil
}
