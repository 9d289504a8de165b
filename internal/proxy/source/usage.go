package source

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

// Usage writes the usage report into the Gateway's usage ConfigMap every
// period, when it changed, for the manager to show in status. Every proxy
// of a Gateway reads the same ledger, so whichever writes last is right.
func Usage(ctx context.Context, c *Client, namespace, gateway string, report func(context.Context) (*dataplane.UsageReport, error), period time.Duration, log *slog.Logger) {
	name := dataplane.Name(gateway, "-usage")
	cm := object{c.core, namespace, "configmaps", name}
	var last []byte
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r, err := report(ctx)
		if err != nil || r == nil {
			if err != nil {
				log.Error("Failed to read usage from the ledger", "error", err)
			}
			continue
		}
		// Compare without the time stamp: unchanged spend is not rewritten.
		stamp := r.UpdatedAt
		r.UpdatedAt = time.Time{}
		same, _ := json.Marshal(r)
		if bytes.Equal(same, last) {
			continue
		}
		r.UpdatedAt = stamp
		data, _ := json.Marshal(r)
		var obj corev1.ConfigMap
		if err := cm.get(ctx, &obj); err != nil {
			log.Error("Failed to read the usage ConfigMap", "configmap", name, "error", err)
			continue
		}
		if obj.Data == nil {
			obj.Data = map[string]string{}
		}
		obj.Data[dataplane.UsageKey] = string(data)
		if err := cm.update(ctx, &obj); err != nil {
			log.Error("Failed to write the usage ConfigMap", "configmap", name, "error", err)
			continue
		}
		last = same
	}
}
