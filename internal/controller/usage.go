package controller

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/render"
)

// UsageInterval is the least time between two usage writes to one object's status.
const UsageInterval = 10 * time.Second

// usageReports reads every Gateway's usage report, newest first.
func usageReports(ctx context.Context, c client.Client) ([]*dataplane.UsageReport, error) {
	cms := &corev1.ConfigMapList{}
	if err := c.List(ctx, cms, client.MatchingLabels{render.LabelUsage: "true"}); err != nil {
		return nil, err
	}
	var out []*dataplane.UsageReport
	for _, cm := range cms.Items {
		if r := parseReport(&cm); r != nil {
			out = append(out, r)
		}
	}
	// Newest first, so that a tenant on several Gateways shows the latest figures.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].UpdatedAt.After(out[j-1].UpdatedAt); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

func parseReport(cm *corev1.ConfigMap) *dataplane.UsageReport {
	data := cm.Data[dataplane.UsageKey]
	if data == "" {
		return nil
	}
	r := &dataplane.UsageReport{}
	if json.Unmarshal([]byte(data), r) != nil {
		return nil
	}
	return r
}

// tenantUsage is a tenant's usage for status, from the newest report that has it.
func tenantUsage(reports []*dataplane.UsageReport, tenant string) *v1.TenantUsage {
	for _, r := range reports {
		u, ok := r.Tenants[tenant]
		if !ok {
			continue
		}
		tu := &v1.TenantUsage{Currency: v1.Currency(u.Currency), Spent: amount(u.Spent), Remaining: amount(u.Remaining),
			Requests: u.Requests, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, UpdatedAt: &metav1.Time{Time: r.UpdatedAt.Truncate(time.Second)}}
		if u.WindowStart != nil {
			tu.WindowStart = &metav1.Time{Time: u.WindowStart.Truncate(time.Second)}
		}
		return tu
	}
	return nil
}

// topTenants is a policy's biggest spenders, from the newest report that has the policy.
func topTenants(reports []*dataplane.UsageReport, policy string) []v1.TenantSpend {
	for _, r := range reports {
		spends, ok := r.Policies[policy]
		if !ok {
			continue
		}
		out := []v1.TenantSpend{}
		for _, s := range spends {
			_, name, _ := strings.Cut(s.Tenant, "/")
			out = append(out, v1.TenantSpend{Tenant: v1.ObjectName(name), Spent: amount(s.Spent), Remaining: amount(s.Remaining), Requests: s.Requests})
		}
		return out
	}
	return nil
}

// amount shows money in status: a balance driven below zero shows as 0.
func amount(m money.Micros) v1.Money { return v1.Money(max(m, 0).String()) }

// throttle lets usage change an object's status at most once per UsageInterval.
type throttle struct{ last sync.Map }

// allow says whether a usage write may happen now, and if not, how long to wait.
func (t *throttle) allow(obj types.NamespacedName, now time.Time) (bool, time.Duration) {
	if v, ok := t.last.Load(obj); ok {
		if wait := UsageInterval - now.Sub(v.(time.Time)); wait > 0 {
			return false, wait
		}
	}
	return true, 0
}

func (t *throttle) wrote(obj types.NamespacedName, now time.Time) { t.last.Store(obj, now) }

// objectsInReport maps a usage ConfigMap to the tenants or policies it reports on.
func objectsInReport(o client.Object, policies bool) []reconcile.Request {
	cm, ok := o.(*corev1.ConfigMap)
	if !ok || cm.Labels[render.LabelUsage] != "true" {
		return nil
	}
	r := parseReport(cm)
	if r == nil {
		return nil
	}
	var names []string
	if policies {
		for name := range r.Policies {
			names = append(names, name)
		}
	} else {
		for name := range r.Tenants {
			names = append(names, name)
		}
	}
	var out []reconcile.Request
	for _, n := range names {
		if ns, name, ok := strings.Cut(n, "/"); ok {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
		}
	}
	return out
}
