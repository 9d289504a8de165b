package ledger

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tollgate-dev/tollgate/internal/money"
)

func openEmbedded(t testing.TB, o EmbeddedOptions) *Embedded {
	t.Helper()
	l, err := OpenEmbedded(filepath.Join(t.TempDir(), "ledger.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// The Embedded ledger answers from the file and from journaled spend in
// memory; both must behave the same, so the suite runs with spend that
// stays in memory for the whole test, with spend committed at once, and
// with commits racing the calls.
func TestEmbeddedConformance(t *testing.T) {
	t.Run("Journaled", func(t *testing.T) {
		runConformance(t, func(t *testing.T) Ledger { return openEmbedded(t, EmbeddedOptions{FlushInterval: time.Hour}) })
	})
	t.Run("Committed", func(t *testing.T) {
		runConformance(t, func(t *testing.T) Ledger {
			return committing{openEmbedded(t, EmbeddedOptions{FlushInterval: time.Hour})}
		})
	})
	// Commits every millisecond, so that they land between and during calls.
	t.Run("Flushing", func(t *testing.T) {
		runConformance(t, func(t *testing.T) Ledger { return openEmbedded(t, EmbeddedOptions{FlushInterval: time.Millisecond}) })
	})
	// With ids shaped like the proxy's, which the file keeps in chunks.
	t.Run("CommittedProxyIDs", func(t *testing.T) {
		runConformance(t, func(t *testing.T) Ledger {
			return proxyIDs{committing{openEmbedded(t, EmbeddedOptions{FlushInterval: time.Hour})}}
		})
	})
}

// proxyIDs turns every id into one shaped like the proxy's (32 hex digits)
// that sorts as the id does; ids that share their first 3 bytes share a
// chunk.
type proxyIDs struct{ Ledger }

func proxyID(id string) string {
	switch {
	case id == "":
		return id // still invalid
	case len(id) > 14:
		sum := sha256.Sum256([]byte(id))
		return "ffff" + hex.EncodeToString(sum[:14])
	}
	b := make([]byte, 14)
	copy(b, id)
	return "0000" + hex.EncodeToString(b)
}

func (p proxyIDs) Reserve(ctx context.Context, id string, holds []Hold, now time.Time) (Decision, error) {
	return p.Ledger.Reserve(ctx, proxyID(id), holds, now)
}

func (p proxyIDs) Settle(ctx context.Context, id string, actual []money.Micros, u Usage, now time.Time) error {
	return p.Ledger.Settle(ctx, proxyID(id), actual, u, now)
}

func (p proxyIDs) Release(ctx context.Context, id string) error {
	return p.Ledger.Release(ctx, proxyID(id))
}

func (p proxyIDs) Charge(ctx context.Context, id string, charges []Hold, u Usage, now time.Time) error {
	return p.Ledger.Charge(ctx, proxyID(id), charges, u, now)
}

// committing flushes the journal after every write.
type committing struct{ *Embedded }

func (c committing) Settle(ctx context.Context, id string, actual []money.Micros, u Usage, now time.Time) error {
	return errors.Join(c.Embedded.Settle(ctx, id, actual, u, now), c.flush())
}

func (c committing) Charge(ctx context.Context, id string, charges []Hold, u Usage, now time.Time) error {
	return errors.Join(c.Embedded.Charge(ctx, id, charges, u, now), c.flush())
}

func TestEmbeddedDropsIDsAfterRetention(t *testing.T) {
	l := openEmbedded(t, EmbeddedOptions{Options: Options{HoldTTL: time.Minute, IDRetention: time.Hour}})
	a := budgetAccount("team", units(100), Window{})
	reserve(t, l, "r", t0, hold(a, units(1)))
	settle(t, l, "r", t0, Usage{}, units(1))
	charge(t, l, "c", t0, Usage{}, hold(a, units(2)))

	// Within the retention a retried charge is a no-op.
	charge(t, l, "c", t0.Add(59*time.Minute), Usage{}, hold(a, units(2)))
	wantBalance(t, l, a, t0, units(3), 0, units(97))
	// Memory dedupes what the journal holds, regardless of this test's
	// clock; the file then answers for ids by their retention.
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}

	// After it, the ids are new again.
	later := t0.Add(2 * time.Hour)
	charge(t, l, "c", later, Usage{}, hold(a, units(2)))
	wantErr(t, l.Settle(context.Background(), "r", []money.Micros{units(1)}, Usage{}, later), ErrUnknownReservation)
	wantBalance(t, l, a, later, units(5), 0, units(95))
	reserve(t, l, "r", later, hold(a, units(1)))
	wantBalance(t, l, a, later, units(5), units(1), units(94))
	// That new record is dropped in turn by Reserve, so "r" holds again.
	after := later.Add(2 * time.Hour)
	reserve(t, l, "r", after, hold(a, units(1)))
	wantBalance(t, l, a, after, units(5), units(1), units(94))
}

func TestEmbeddedKeepsStateAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	p := prepaidAccount("wallet")
	l, err := OpenEmbedded(path, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	reserve(t, l, "held", t0, hold(p, units(2)))
	reserve(t, l, "settled", t0, hold(p, units(3)))
	settle(t, l, "settled", t0, Usage{Requests: 1}, units(3))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = OpenEmbedded(path, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Settled spend survives; holds live in memory and do not: a request
	// that was held but never settled was never served.
	wantBalance(t, l, p, t0, units(3), 0, units(7))
	wantErr(t, l.Settle(context.Background(), "held", []money.Micros{units(1)}, Usage{}, t0), ErrUnknownReservation)
	wantBalance(t, l, p, t0, units(3), 0, units(7))
}

// durabilityChildEnv, when set to a file path, turns TestEmbeddedSurvivesKill9
// into the child that writes to that ledger until it is killed.
const durabilityChildEnv = "TOLLGATE_LEDGER_DURABILITY_CHILD"

const (
	durabilityWorkers = 4
	durabilityWant    = 150 // committed settles to see before the kill
)

// TestEmbeddedSurvivesKill9 kills a process that settles in a loop with
// SIGKILL and checks that every settle it reported committed is in the file,
// counted exactly once.
func TestEmbeddedSurvivesKill9(t *testing.T) {
	if path := os.Getenv(durabilityChildEnv); path != "" {
		durabilityChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmbeddedSurvivesKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), durabilityChildEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	var committed []string
	timeout := time.After(60 * time.Second)
	for len(committed) < durabilityWant {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("child exited after %d commits: %s", len(committed), stderr.String())
			}
			if id, ok := strings.CutPrefix(line, "committed "); ok {
				committed = append(committed, id)
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			t.Fatalf("child committed only %d settles in 60s: %s", len(committed), stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for line := range lines { // what the child printed before it died counts too
		if id, ok := strings.CutPrefix(line, "committed "); ok {
			committed = append(committed, id)
		}
	}
	_ = cmd.Wait()
	if cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v", cmd.ProcessState)
	}

	l, err := OpenEmbedded(path, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, id := range committed {
		wantBalance(t, l, durabilityOwn(id), t0, units(1), 0, units(99))
		// A retried settle after the restart is recognised, not counted again.
		settle(t, l, id, t0, Usage{}, units(5), units(5))
		wantBalance(t, l, durabilityOwn(id), t0, units(1), 0, units(99))
	}
	// Settles that committed after the last line read, at most one per
	// worker, count too; none counts twice.
	total := balance(t, l, durabilityTotal, t0).Spent
	if total < units(int64(len(committed))) || total > units(int64(len(committed)+durabilityWorkers)) {
		t.Fatalf("total spent %v after %d reported commits", total, len(committed))
	}
	t.Logf("%d settles reported before SIGKILL, %v in the reopened file", len(committed), total)
}

var durabilityTotal = budgetAccount("total", MaxAmount, Window{})

func durabilityOwn(id string) Account { return budgetAccount("own-"+id, units(100), Window{}) }

// durabilityChild settles in a loop and prints each id once Settle returned;
// bounded in count and time in case the parent never kills it.
func durabilityChild(t *testing.T, path string) {
	l, err := OpenEmbedded(path, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range durabilityWorkers {
		wg.Go(func() {
			for i := 0; i < 100_000 && time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				holds := []Hold{hold(durabilityOwn(id), units(2)), hold(durabilityTotal, units(2))}
				if _, err := l.Reserve(ctx, id, holds, t0); err != nil {
					t.Error(err)
					return
				}
				if err := l.Settle(ctx, id, []money.Micros{units(1), units(1)}, Usage{Requests: 1}, t0); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				_, _ = io.WriteString(os.Stdout, "committed "+id+"\n")
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestEmbeddedDropsWhatNoLongerCounts(t *testing.T) {
	l := openEmbedded(t, EmbeddedOptions{})
	wallet, team := sweepScenario(t, l)
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	count := func(account string, bucket []byte) (n int) {
		err := l.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAccounts).Bucket([]byte(account)).Bucket(bucket).ForEach(func(_, _ []byte) error {
				n++
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"live grants", count(wallet.Key, bucketGrants), 1},
		{"grant ids", count(wallet.Key, bucketGranted), 2},
		{"rolling buckets", count(team.Key, bucketCounters), 1},
	} {
		if c.got != c.want {
			t.Errorf("%d %s stored, want %d", c.got, c.what, c.want)
		}
	}
}

// crash stops an Embedded ledger the way a killed process does: the journal
// is left as it is, uncommitted.
func crash(t *testing.T, e *Embedded) {
	t.Helper()
	e.closed.Do(func() {
		close(e.stop)
		<-e.done
		_ = syscall.Munmap(e.journal.mem)
		_ = e.journal.f.Close()
		if err := e.db.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEmbeddedReplaysItsJournal: spend only journaled when the process
// dies is committed by the next Open, exactly once, even when a journal
// file was committed already, and a torn last record is ignored.
func TestEmbeddedReplaysItsJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	p, team := prepaidAccount("wallet"), budgetAccount("team", units(100), monthUTC)
	open := func() *Embedded {
		t.Helper()
		l, err := OpenEmbedded(path, EmbeddedOptions{FlushInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open()
	grant(t, l, p.Key, Grant{ID: "g", Amount: units(10)}, t0)
	reserve(t, l, "a", t0, hold(p, units(2)), hold(team, units(2)))
	settle(t, l, "a", t0, Usage{Requests: 1}, units(2), units(2))
	// This journal file is committed but, as if the process died before
	// deleting it, comes back.
	committed, err := os.ReadFile(l.journal.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".journal.1", committed, 0o600); err != nil {
		t.Fatal(err)
	}
	reserve(t, l, "b", t0, hold(p, units(3)))
	settle(t, l, "b", t0, Usage{Requests: 1}, units(3))
	charge(t, l, "c", t0, Usage{Requests: 1}, hold(team, units(4)))
	torn, end := l.journal.path, int64(l.journal.off)
	crash(t, l)
	// The machine died in the middle of writing one more record.
	f, err := os.OpenFile(torn, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{200, 0, 0, 0, 1, 2, 3, 4, 's', 4}, end); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	l = open()
	defer l.Close()
	if files, _ := filepath.Glob(path + ".journal.*"); len(files) != 1 {
		t.Errorf("journal files after replay: %v, want only the new one", files)
	}
	wantBalance(t, l, p, t0, units(5), 0, units(5))
	wantBalance(t, l, team, t0, units(6), 0, units(94))
	// Retries after the restart are recognised.
	settle(t, l, "b", t0, Usage{}, units(3))
	charge(t, l, "c", t0, Usage{}, hold(team, units(4)))
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	if s := wantBalance(t, l, team, t0, units(6), 0, units(94)); s.Usage.Requests != 2 {
		t.Errorf("team counted %d requests, want 2", s.Usage.Requests)
	}
}

// TestEmbeddedReusedJournalFileReplaysOnlyItsOwn: a committed journal file
// is reused for a later generation, over the records it held. After a
// crash, only the new generation's records are replayed, even when the old
// ones' ids are past their retention and would count again.
func TestEmbeddedReusedJournalFileReplaysOnlyItsOwn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	o := EmbeddedOptions{FlushInterval: time.Hour, Options: Options{HoldTTL: time.Minute, IDRetention: time.Hour}}
	l, err := OpenEmbedded(path, o)
	if err != nil {
		t.Fatal(err)
	}
	a := budgetAccount("team", MaxAmount, Window{})
	spend := func(id string, at time.Time) {
		t.Helper()
		reserve(t, l, id, at, hold(a, units(1)))
		settle(t, l, id, at, Usage{Requests: 1}, units(1))
	}
	flush := func() {
		t.Helper()
		if err := l.flush(); err != nil {
			t.Fatal(err)
		}
	}
	first := l.journal.path
	for _, id := range []string{"a", "b", "c"} {
		spend(id, t0)
	}
	flush()
	later := t0.Add(2 * time.Hour) // a, b and c are past their retention
	spend("x", later)
	flush() // prunes a, b and c; the next generation starts on the first file
	if l.journal.gen != 3 || len(l.journal.entries) != 0 {
		t.Fatalf("generation %d with %d entries, want 3 and none", l.journal.gen, len(l.journal.entries))
	}
	if old, _ := readJournal(l.journal.path, 1); len(old) != 3 {
		t.Fatalf("the reused file holds %d records of generation 1, want a, b and c (from %s)", len(old), first)
	}
	spend("d", later) // over a's record, the same size: b's follows intact
	crash(t, l)

	if l, err = OpenEmbedded(path, o); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wantBalance(t, l, a, later, units(5), 0, MaxAmount-units(5))
}

// TestEmbeddedCommitFailuresBackUp: while the file cannot be written, spend
// stays journaled and counted, up to a bound after which Settle fails (and
// the policy's failureMode decides); once the file can be written again,
// everything journaled is committed, once.
func TestEmbeddedCommitFailuresBackUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := OpenEmbedded(path, EmbeddedOptions{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reopen := func(readOnly bool) {
		t.Helper()
		if err := l.db.Close(); err != nil {
			t.Fatal(err)
		}
		if l.db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: readOnly, Timeout: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	a := budgetAccount("team", MaxAmount, Window{})
	settled, tried := 0, 0
	settleOne := func() error {
		tried++
		id := fmt.Sprint("r", tried)
		reserve(t, l, id, t0, hold(a, units(2)))
		err := l.Settle(context.Background(), id, []money.Micros{units(1)}, Usage{Requests: 1}, t0)
		if err == nil {
			settled++
		}
		return err
	}
	reopen(true) // the disk turns read-only
	for range maxBacklog {
		if err := settleOne(); err != nil {
			t.Fatal(err)
		}
		if err := l.flush(); err == nil {
			t.Fatal("a commit to a read-only file succeeded")
		}
	}
	wantErr(t, settleOne(), errBacklog)
	if err := l.Release(context.Background(), fmt.Sprint("r", tried)); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, l, a, t0, units(int64(settled)), 0, MaxAmount-units(int64(settled)))

	reopen(false) // writable again
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	if err := settleOne(); err != nil {
		t.Fatal(err)
	}
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	if s := wantBalance(t, l, a, t0, units(int64(settled)), 0, MaxAmount-units(int64(settled))); s.Usage.Requests != int64(settled) {
		t.Errorf("%d requests counted, want %d", s.Usage.Requests, settled)
	}
	if files, _ := filepath.Glob(path + ".journal.*"); len(files) != 1 {
		t.Errorf("journal files after the commit: %v, want only the current one", files)
	}
}

// TestEmbeddedJournalFilesFillUp: a journal file that fills up is sealed
// and the next one started; commits and replays take every sealed file.
func TestEmbeddedJournalFilesFillUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	a := budgetAccount("team", MaxAmount, Window{})
	for _, crashed := range []bool{false, true} {
		l, err := OpenEmbedded(path, EmbeddedOptions{FlushInterval: time.Hour, FlushAt: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		const n = 20000 // a few files of records
		for i := range n {
			id := fmt.Sprint(crashed, i)
			reserve(t, l, id, t0, hold(a, units(1)))
			settle(t, l, id, t0, Usage{Requests: 1}, units(1))
		}
		if len(l.journal.sealed) < 2 {
			t.Fatalf("%d sealed journal files after %d records, want 2 or more", len(l.journal.sealed), n)
		}
		want := units(n)
		if crashed {
			want = units(2 * n)
			crash(t, l)
			if l, err = OpenEmbedded(path, EmbeddedOptions{}); err != nil {
				t.Fatal(err)
			}
		} else if err := l.flush(); err != nil {
			t.Fatal(err)
		}
		wantBalance(t, l, a, t0, want, 0, MaxAmount-want)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if files, _ := filepath.Glob(path + ".journal.*"); len(files) != 0 {
		t.Errorf("journal files after a clean close: %v", files)
	}
}

// TestEmbeddedPrunesExpiredIDs: id records past their retention leave the
// file a few commits later, whatever order the ids come in.
func TestEmbeddedPrunesExpiredIDs(t *testing.T) {
	l := openEmbedded(t, EmbeddedOptions{FlushInterval: time.Hour, Options: Options{HoldTTL: time.Minute, IDRetention: time.Hour}})
	a := budgetAccount("team", MaxAmount, Window{})
	ids := func() (n int) {
		err := l.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketReservations).ForEach(func(_, _ []byte) error { n++; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 300 { // ids in no particular order
		id := fmt.Sprintf("%x", (i*7919)%1000)
		reserve(t, l, id, t0, hold(a, units(1)))
		settle(t, l, id, t0, Usage{}, units(1))
	}
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	if n := ids(); n != 300 {
		t.Fatalf("%d ids stored, want 300", n)
	}
	later := t0.Add(2 * time.Hour)
	for i := range 10 {
		id := fmt.Sprint("later-", i)
		reserve(t, l, id, later, hold(a, units(1)))
		settle(t, l, id, later, Usage{}, units(1))
		if err := l.flush(); err != nil {
			t.Fatal(err)
		}
	}
	if n := ids(); n != 10 {
		t.Errorf("%d ids stored after the retention, want the 10 recent ones", n)
	}
	wantBalance(t, l, a, later, units(310), 0, MaxAmount-units(310))
}

// TestEmbeddedProxyIDChunks: ids shaped like the proxy's are stored in
// chunks. A journal replayed twice in one commit counts once; the chunks go
// once their ids are past the retention; a proxy id stored under a key of
// its own, as earlier versions did, is still found; and after a reopen,
// retries are recognised from the chunks.
func TestEmbeddedProxyIDChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	o := EmbeddedOptions{FlushInterval: time.Hour, Options: Options{HoldTTL: time.Minute, IDRetention: time.Hour}}
	open := func() *Embedded {
		t.Helper()
		l, err := OpenEmbedded(path, o)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// Pairs of ids 17ms apart: two ids in each of three chunks.
	id := func(i int) string { return fmt.Sprintf("%016x%016x", t0.UnixNano()+int64(i/2)<<24, i) }
	a := budgetAccount("team", MaxAmount, Window{})
	count := func(l *Embedded, bucket []byte) (n int) {
		t.Helper()
		err := l.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucket).ForEach(func(_, _ []byte) error { n++; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	l := open()
	for i := range 6 {
		reserve(t, l, id(i), t0, hold(a, units(1)))
		settle(t, l, id(i), t0, Usage{Requests: 1}, units(1))
	}
	crash(t, l)
	// The journal again, each record twice, as one file with the unseeded
	// checksums of older versions: the second copy of an id is found in
	// the commit under way, not yet in the file.
	entries, err := readJournal(path+".journal.1", 1)
	if err != nil || len(entries) != 6 {
		t.Fatalf("%d entries in the journal (%v), want 6", len(entries), err)
	}
	if err := os.Remove(path + ".journal.1"); err != nil {
		t.Fatal(err)
	}
	var legacy []byte
	for _, en := range slices.Concat(entries, entries) {
		rec := encodeEntry(make([]byte, 8), en)
		binary.LittleEndian.PutUint32(rec, uint32(len(rec)-8))
		binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], crcTable))
		legacy = append(legacy, rec...)
	}
	if err := os.WriteFile(path+".journal.7", legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	l = open()
	wantBalance(t, l, a, t0, units(6), 0, MaxAmount-units(6))
	if n := count(l, bucketReservationChunks); n != 3 {
		t.Errorf("%d chunks, want 3", n)
	}
	if n := count(l, bucketReservations); n != 0 {
		t.Errorf("%d ids with keys of their own, want none", n)
	}
	// Retries after the reopen are recognised from the chunks.
	settle(t, l, id(5), t0, Usage{Requests: 1}, units(1))
	wantAdmitted(t, reserve(t, l, id(0), t0, hold(a, units(9))), MaxAmount-units(1))
	wantBalance(t, l, a, t0, units(6), 0, MaxAmount-units(6))

	// A proxy id with a key of its own, as earlier versions stored them.
	old := id(100)
	err = l.db.Update(func(tx *bolt.Tx) error {
		v := encoder{u64(ms(t0.Add(time.Hour)))}
		v.remaining(Decision{Admitted: true, Remaining: []money.Micros{units(5)}})
		return tx.Bucket(bucketReservations).Put([]byte(old), v.b)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open()
	wantAdmitted(t, reserve(t, l, old, t0, hold(a, units(1))), units(5))

	// Past the retention, later commits prune the chunks.
	later := t0.Add(2 * time.Hour)
	for i := range 4 {
		next := fmt.Sprintf("%016x%016x", later.UnixNano(), i)
		reserve(t, l, next, later, hold(a, units(1)))
		settle(t, l, next, later, Usage{Requests: 1}, units(1))
		if err := l.flush(); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(l, bucketReservationChunks); n != 1 {
		t.Errorf("%d chunks after the retention, want the 1 recent one", n)
	}
	wantBalance(t, l, a, later, units(10), 0, MaxAmount-units(10))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
