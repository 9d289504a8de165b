package controller

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

// Options configure the controllers.
type Options struct {
	// ProxyImage runs the proxies of Gateways whose ProxyConfig names no image.
	ProxyImage string
}

// CacheOptions keeps the manager's cache to what it needs: of all Leases,
// only proxy heartbeats (nodes renew thousands of others).
func CacheOptions() cache.Options {
	heartbeats, _ := labels.NewRequirement(dataplane.LabelHeartbeat, selection.Exists, nil)
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&coordinationv1.Lease{}: {Label: labels.NewSelector().Add(*heartbeats)},
	}}
}

// Setup registers the field indexes and every reconciler with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	if err := setupIndexes(ctx, mgr); err != nil {
		return err
	}
	c := mgr.GetClient()
	events := mgr.GetEventRecorder("tollgate")
	for _, r := range []interface{ SetupWithManager(ctrl.Manager) error }{
		&GatewayClassReconciler{Client: c},
		&GatewayReconciler{Client: c, Events: events, ProxyImage: opts.ProxyImage},
		&ProxyConfigReconciler{Client: c},
		&ModelProviderReconciler{Client: c, Events: events},
		&AIRouteReconciler{Client: c},
		&TenantReconciler{Client: c, Events: events},
		&PaymentPolicyReconciler{Client: c, Events: events},
	} {
		if err := r.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return nil
}
