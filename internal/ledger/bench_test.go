package ledger

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/testredis"
)

// BenchmarkReserveSettle measures one request's ledger work: Reserve on a
// prepaid balance and a monthly budget, then Settle. It reports the
// process's CPU time per request too, which includes the Embedded ledger's
// background commits and the Redis client (not the server).
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
		n := seq.Add(1)
		id := fmt.Sprintf("%016x%016x", time.Now().UnixNano(), n) // shaped like the proxy's ids
		d, err := l.Reserve(ctx, id, []Hold{hold(p, units(1)), hold(team, units(1))}, t0)
		if err != nil || !d.Admitted {
			return fmt.Errorf("reserve %s: %+v %v", id, d, err)
		}
		return l.Settle(ctx, id, []money.Micros{1000, 1000}, Usage{Requests: 1, InputTokens: 500, OutputTokens: 200}, t0)
	}
	b.Run("serial", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			if err := one(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16) // proxies serve many requests at once
		defer reportCPU(b)()
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

// reportCPU reports the process's CPU time per op from now until the
// returned function runs.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
