// Package source delivers configs to the proxy: from files on disk
// (standalone), or from the Gateway's ConfigMap and Secret through the
// Kubernetes API (in and out of cluster); and reports the config served
// through a heartbeat Lease.
package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

// Loader takes a new config; it refuses an invalid one and keeps serving the old.
type Loader interface {
	Load(cfg *dataplane.Config, creds map[string][]byte) error
}

// load decodes and hands over a config, logging the outcome.
func load(l Loader, log *slog.Logger, data []byte, creds map[string][]byte, from string) {
	cfg, err := dataplane.Decode(data)
	if err == nil {
		err = l.Load(cfg, creds)
	}
	if err != nil {
		log.Error("Refused config; the previous one keeps serving", "from", from, "error", err)
		return
	}
	log.Info("Loaded config", "from", from, "hash", cfg.Hash)
}

// Files polls a config file, and optionally a credentials file (a JSON
// object of key to value), and loads them whenever either changes. It
// returns an error only if the first read fails, and then runs until ctx ends.
func Files(ctx context.Context, configPath, credsPath string, l Loader, log *slog.Logger, every time.Duration) error {
	var lastCfg, lastCreds []byte
	read := func() error {
		data, err := os.ReadFile(configPath)
		if err != nil {
			return err
		}
		var creds []byte
		if credsPath != "" {
			if creds, err = os.ReadFile(credsPath); err != nil {
				return err
			}
		}
		if bytes.Equal(data, lastCfg) && bytes.Equal(creds, lastCreds) {
			return nil
		}
		lastCfg, lastCreds = data, creds
		values := map[string][]byte{}
		if len(creds) > 0 {
			var m map[string]string
			if err := json.Unmarshal(creds, &m); err != nil {
				return fmt.Errorf("credentials file: %w", err)
			}
			for k, v := range m {
				values[k] = []byte(v)
			}
		}
		load(l, log, data, values, configPath)
		return nil
	}
	if err := read(); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := read(); err != nil {
					log.Error("Failed to read config", "path", configPath, "error", err)
				}
			}
		}
	}()
	return nil
}
