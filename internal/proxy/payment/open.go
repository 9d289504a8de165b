package payment

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/ledger"
)

// OpenLedger opens the ledger a config declares: a journaled, fsync'd file
// in dir (Embedded), or a Redis client that any number of proxies share.
// Errors committing the Embedded journal, which is retried, go to log.
func OpenLedger(dir string, log *slog.Logger) Opener {
	return func(cfg dataplane.Ledger, creds map[string][]byte) (ledger.Ledger, error) {
		switch cfg.Type {
		case "Embedded":
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			return ledger.OpenEmbedded(filepath.Join(dir, "ledger.db"), ledger.EmbeddedOptions{OnFlushError: func(err error) {
				log.Error("Committing the ledger journal failed; spend stays journaled and is retried", "error", err)
			}})
		case "Redis":
			if cfg.Redis == nil {
				return nil, fmt.Errorf("the Redis ledger has no address")
			}
			o := &redis.Options{Addr: cfg.Redis.Address}
			if cfg.Redis.PasswordKey != "" {
				o.Password = string(creds[cfg.Redis.PasswordKey])
			}
			if cfg.Redis.TLS {
				o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			return ledger.NewRedis(redis.NewClient(o), ledger.RedisOptions{KeyPrefix: "tollgate:"}), nil
		}
		return nil, fmt.Errorf("unknown ledger type %q", cfg.Type)
	}
}
