package source

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

type recorder struct {
	mu     sync.Mutex
	hashes []string
	creds  map[string][]byte
}

func (r *recorder) Load(c *dataplane.Config, creds map[string][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hashes = append(r.hashes, c.Hash)
	r.creds = creds
	return nil
}

func (r *recorder) loaded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.hashes...)
}

func write(t *testing.T, path string, c *dataplane.Config) string {
	t.Helper()
	data, err := dataplane.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return c.Hash
}

func TestFilesWatchesAndRefusesBadConfigs(t *testing.T) {
	dir := t.TempDir()
	cfgPath, credsPath := filepath.Join(dir, "config.json"), filepath.Join(dir, "creds.json")
	c := &dataplane.Config{SchemaVersion: dataplane.SchemaVersion, Gateway: "ns/gw", Listeners: []dataplane.Listener{{Name: "h", Port: 8080}},
		Limits: dataplane.Limits{MaxRequestBodyBytes: 1024}, Ledger: dataplane.Ledger{Type: "Embedded"}}
	first := write(t, cfgPath, c)
	if err := os.WriteFile(credsPath, []byte(`{"provider.ns.openai":"sk-1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Files(ctx, cfgPath, credsPath, r, slog.New(slog.DiscardHandler), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := r.loaded(); len(got) != 1 || got[0] != first || string(r.creds["provider.ns.openai"]) != "sk-1" {
		t.Fatalf("first load: %v %v", got, r.creds)
	}
	// A broken file is refused; the next good one is loaded.
	if err := os.WriteFile(cfgPath, []byte(`{"schemaVersion":1,`), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	c.Logging.Level = "debug"
	second := write(t, cfgPath, c)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(r.loaded()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	if got := r.loaded(); len(got) != 2 || got[1] != second {
		t.Fatalf("loads %v, want [%s %s]", got, first, second)
	}
	if err := Files(ctx, filepath.Join(dir, "missing.json"), "", r, slog.New(slog.DiscardHandler), time.Second); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("a missing config file: %v", err)
	}
}

func TestParseGateway(t *testing.T) {
	if ns, n, err := ParseGateway("demo/ai-gateway"); err != nil || ns != "demo" || n != "ai-gateway" {
		t.Fatal(ns, n, err)
	}
	for _, bad := range []string{"", "gw", "/gw", "ns/"} {
		if _, _, err := ParseGateway(bad); err == nil {
			t.Errorf("ParseGateway(%q) accepted", bad)
		}
	}
}
