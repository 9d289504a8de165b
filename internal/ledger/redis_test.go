package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/testredis"
)

// prefixes gives each ledger on a shared test server its own keys.
var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

func openRedis(t testing.TB, addr string, o RedisOptions) *Redis {
	t.Helper()
	l := NewRedis(redis.NewClient(&redis.Options{Addr: addr}), o)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestRedisConformance(t *testing.T) {
	addr := testredis.Start(t)
	runConformance(t, func(t *testing.T) Ledger {
		return openRedis(t, addr, RedisOptions{KeyPrefix: newPrefix()})
	})
}

// TestRedisTwoClientsShareOneLedger races reservations from two clients,
// each with its own connection pool, as two proxy processes would.
func TestRedisTwoClientsShareOneLedger(t *testing.T) {
	addr := testredis.Start(t)
	o := RedisOptions{KeyPrefix: newPrefix()}
	testConcurrent(t, []Ledger{openRedis(t, addr, o), openRedis(t, addr, o)})
}

func TestRedisKeyPrefixSeparatesLedgers(t *testing.T) {
	addr := testredis.Start(t)
	a, b := openRedis(t, addr, RedisOptions{KeyPrefix: "a:"}), openRedis(t, addr, RedisOptions{KeyPrefix: "b:"})
	p := prepaidAccount("wallet")
	grant(t, a, p.Key, Grant{ID: "g", Amount: units(5)}, t0)
	wantBalance(t, a, p, t0, 0, 0, units(5))
	wantBalance(t, b, p, t0, 0, 0, 0)

	keys, err := a.c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "a:") {
			t.Fatalf("key %q outside the prefix", k)
		}
	}
}

// TestRedisDropsIDsAfterRetention uses real time: Redis expires the id
// records by its own clock.
func TestRedisDropsIDsAfterRetention(t *testing.T) {
	addr := testredis.Start(t)
	retention := 300 * time.Millisecond
	l := openRedis(t, addr, RedisOptions{KeyPrefix: newPrefix(), Options: Options{HoldTTL: 100 * time.Millisecond, IDRetention: retention}})
	a := budgetAccount("team", units(100), Window{})
	reserve(t, l, "r", t0, hold(a, units(1)))
	charge(t, l, "c", t0, Usage{}, hold(a, units(2)))
	ctx := context.Background()
	for _, k := range []string{l.reservationKey("r"), l.prefix + "chg:c"} {
		ttl, err := l.c.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > retention {
			t.Fatalf("TTL of %s is %v (%v), want within %v", k, ttl, err, retention)
		}
	}
	time.Sleep(retention + 200*time.Millisecond)
	wantErr(t, l.Settle(ctx, "r", []money.Micros{units(1)}, Usage{}, t0), ErrUnknownReservation)
	charge(t, l, "c", t0, Usage{}, hold(a, units(2)))
	wantBalance(t, l, a, t0, units(4), units(1), units(95)) // the hold lives by injected time
}

// TestRedisStoresIntegers checks that amounts past what Lua's tostring
// prints exactly (14 digits) reach Redis as exact integers.
func TestRedisStoresIntegers(t *testing.T) {
	addr := testredis.Start(t)
	l := openRedis(t, addr, RedisOptions{KeyPrefix: newPrefix()})
	p := prepaidAccount("wallet")
	big := money.Micros(123_456_789_012_345_6)
	grant(t, l, p.Key, Grant{ID: "g", Amount: MaxAmount}, t0)
	charge(t, l, "c", t0, Usage{InputTokens: 1 << 40}, hold(p, big))
	wantBalance(t, l, p, t0, big, 0, MaxAmount-big)

	ctx := context.Background()
	spent, err := l.c.HGet(ctx, l.counterKey(p.Key, p.Window.writeCounter(t0)), "s").Result()
	if err != nil || spent != fmt.Sprint(int64(big)) {
		t.Fatalf("stored spent %q (%v), want %d", spent, err, int64(big))
	}
	g, err := l.c.HGet(ctx, l.key(p.Key, "grants"), "g").Result()
	if want := fmt.Sprintf("%d|%d|0", int64(MaxAmount), int64(big)); err != nil || g != want {
		t.Fatalf("stored grant %q (%v), want %q", g, err, want)
	}
}

func TestRedisDropsWhatNoLongerCounts(t *testing.T) {
	addr := testredis.Start(t)
	l := openRedis(t, addr, RedisOptions{KeyPrefix: newPrefix()})
	wallet, team := sweepScenario(t, l)
	ctx := context.Background()
	holds, err1 := l.c.ZCard(ctx, l.key(wallet.Key, "holds")).Result()
	grants, err2 := l.c.HLen(ctx, l.key(wallet.Key, "grants")).Result()
	ids, err3 := l.c.SCard(ctx, l.key(wallet.Key, "granted")).Result()
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if holds != 1 || grants != 1 || ids != 2 {
		t.Errorf("stored %d holds, %d live grants, %d grant ids; want 1, 1, 2", holds, grants, ids)
	}
	// Redis drops rolling buckets by itself once no read can reach them.
	keys, err := l.c.Keys(ctx, l.key(team.Key, "c:*")).Result()
	if err != nil || len(keys) != 3 {
		t.Fatalf("rolling buckets %v (%v), want 3", keys, err)
	}
	maxTTL := team.Window.Rolling + 2*team.Window.bucketWidth()
	for _, k := range keys {
		if ttl := l.c.PTTL(ctx, k).Val(); ttl <= 0 || ttl > maxTTL {
			t.Errorf("%s expires in %v, want within %v", k, ttl, maxTTL)
		}
	}
}
