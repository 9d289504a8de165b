package ledger

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/testredis"
)

// BenchmarkReserveSettle measures one request's ledger work: Reserve on a
// prepaid balance and a monthly budget, then Settle. Embedded commits are
// fsynced; "parallel" shows how concurrent requests share commits.
func BenchmarkReserveSettle(b *testing.B) {
	b.Run("Embedded", func(b *testing.B) {
		benchReserveSettle(b, openEmbedded(b, EmbeddedOptions{}))
	})
	b.Run("Redis", func(b *testing.B) {
		benchReserveSettle(b, openRedis(b, testredis.Start(b), RedisOptions{KeyPrefix: newPrefix()}))
	})
}

func benchReserveSettle(b *testing.B, l Ledger) {
	ctx := context.Background()
	p := prepaidAccount("wallet")
	team := budgetAccount("team", MaxAmount, monthUTC)
	if err := l.Grant(ctx, p.Key, Grant{ID: "g", Amount: MaxAmount}, t0); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	one := func() error {
		id := fmt.Sprint(b.Name(), "-", seq.Add(1))
		d, err := l.Reserve(ctx, id, []Hold{hold(p, units(1)), hold(team, units(1))}, t0)
		if err != nil || !d.Admitted {
			return fmt.Errorf("reserve %s: %+v %v", id, d, err)
		}
		return l.Settle(ctx, id, []money.Micros{1000, 1000}, Usage{Requests: 1, InputTokens: 500, OutputTokens: 200}, t0)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := one(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16) // proxies serve many requests at once
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := one(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
