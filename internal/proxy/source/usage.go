package source

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/render"
)

// Usage writes the usage report into the Gateway's usage ConfigMap every
// period, when it changed, for the manager to show in status. Every proxy
// of a Gateway reads the same ledger, so whichever writes last is right.
func Usage(ctx context.Context, cs kubernetes.Interface, namespace, gateway string, report func(context.Context) (*dataplane.UsageReport, error), period time.Duration, log *slog.Logger) {
	name := render.Name(gateway, "-usage")
	cms := cs.CoreV1().ConfigMaps(namespace)
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
		cm, err := cms.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			log.Error("Failed to read the usage ConfigMap", "configmap", name, "error", err)
			continue
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[render.UsageKey] = string(data)
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "tollgate-proxy"}); err != nil {
			log.Error("Failed to write the usage ConfigMap", "configmap", name, "error", err)
			continue
		}
		last = same
	}
}
