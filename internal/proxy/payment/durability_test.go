package payment_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/ledger"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runProxy starts the proxy binary on a standalone config and waits until it is ready.
func runProxy(t *testing.T, bin, cfgPath, ledgerDir, addr string) *exec.Cmd {
	t.Helper()
	admin := freePort(t)
	cmd := exec.Command(bin, "--config", cfgPath, "--listen-address", addr, "--admin-address", admin, "--ledger-dir", ledgerDir, "--log-level", "error")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					return cmd
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	t.Fatal("the proxy never became ready")
	return nil
}

// TestKillNineLosesNoCommittedSpend kills the proxy process with SIGKILL
// under load, restarts it on the same Embedded ledger file, and compares
// the committed spend with the costs of the answers clients received.
func TestKillNineLosesNoCommittedSpend(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "proxy")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/proxy").CombinedOutput(); err != nil {
		t.Fatalf("building the proxy: %v\n%s", err, out)
	}
	f := fake(t, 10)
	ledgerDir := filepath.Join(dir, "ledger")
	cfg := config(f.URL(), []dataplane.Credit{{ID: "big", Amount: money.MustParse("1000")}}, dataplane.Ledger{Type: "Embedded"}, prepaid("t/plan"))
	data, err := dataplane.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := runProxy(t, bin, cfgPath, ledgerDir, addr)
	g := &gateway{url: "http://" + addr}

	const workers = 4
	var mu sync.Mutex
	var received money.Micros
	var answers int
	maxCost := money.Micros(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, _, err := chat(g, "gpt-4o", 10)
				if err != nil {
					continue // the proxy is dead: this answer never arrived
				}
				if resp.StatusCode != 200 {
					continue
				}
				c, err := money.Parse(resp.Header.Get(proxy.HeaderCost))
				if err != nil {
					t.Errorf("cost header %q", resp.Header.Get(proxy.HeaderCost))
					continue
				}
				mu.Lock()
				received += c
				answers++
				maxCost = max(maxCost, c)
				mu.Unlock()
			}
		})
	}
	// Kill once a good number of answers went through, mid-load.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := answers
		mu.Unlock()
		if n >= 200 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	wg.Wait()

	// The restarted proxy serves on the same ledger, then stops cleanly.
	cmd = runProxy(t, bin, cfgPath, ledgerDir, addr)
	resp, body, err := chat(g, "gpt-4o", 10)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after restart: %v %s", err, body)
	}
	after, _ := money.Parse(resp.Header.Get(proxy.HeaderCost))
	received += after
	answers++
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()

	l, err := ledger.OpenEmbedded(filepath.Join(ledgerDir, "ledger.db"), ledger.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	snap, err := l.Balance(context.Background(), ledger.Account{Key: "credits|t/acme|USD", Kind: ledger.Prepaid}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d answers received, costing %s; the ledger committed %s over %d requests (difference %s, one request costs up to %s)",
		answers, received, snap.Spent, snap.Usage.Requests, snap.Spent-received, maxCost)
	// Every answer a client received was committed first; only requests in
	// flight at the kill (settled, answer lost) may add to the ledger.
	if snap.Spent < received {
		t.Fatalf("committed spend %s is less than the %s clients were answered for: spend was lost", snap.Spent, received)
	}
	if extra := snap.Spent - received; extra > workers*maxCost || snap.Usage.Requests-int64(answers) > workers {
		t.Fatalf("the ledger holds %s (%d requests) more than was answered; at most %d requests were in flight", extra, snap.Usage.Requests-int64(answers), workers)
	}
}
