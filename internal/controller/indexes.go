package controller

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/translate"
)

// Field indexes: who refers to what, as "namespace/name", so that a change
// re-reconciles only the objects it affects.
const (
	indexRouteParent     = "tollgate.dev/route-parent"     // AIRoute -> its Gateways
	indexRouteProvider   = "tollgate.dev/route-provider"   // AIRoute -> its ModelProviders
	indexProviderSecret  = "tollgate.dev/provider-secret"  // ModelProvider -> its Secret
	indexTenantSecret    = "tollgate.dev/tenant-secret"    // Tenant -> its key Secrets
	indexTenantRoute     = "tollgate.dev/tenant-route"     // Tenant -> routes it subscribes to
	indexPolicySecret    = "tollgate.dev/policy-secret"    // PaymentPolicy -> facilitator Secret
	indexGatewayClass    = "tollgate.dev/gateway-class"    // Gateway -> its GatewayClass
	indexGatewayParams   = "tollgate.dev/gateway-params"   // Gateway -> its ProxyConfig
	indexClassParams     = "tollgate.dev/class-params"     // GatewayClass -> its ProxyConfig
	indexProxyConfSecret = "tollgate.dev/proxyconf-secret" // ProxyConfig -> its Redis Secret
)

func key(namespace, name string) string { return namespace + "/" + name }

type indexer struct {
	obj     client.Object
	field   string
	extract func(client.Object) []string
}

var indexers = []indexer{
	{&v1.AIRoute{}, indexRouteParent, func(o client.Object) []string {
		r := o.(*v1.AIRoute)
		var out []string
		for _, ref := range r.Spec.ParentRefs {
			if k, ok := translate.ParentKey(r.Namespace, ref); ok {
				out = append(out, k.String())
			}
		}
		return out
	}},
	{&v1.AIRoute{}, indexRouteProvider, func(o client.Object) []string {
		r := o.(*v1.AIRoute)
		var out []string
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				out = append(out, key(r.Namespace, string(b.Name)))
			}
		}
		return out
	}},
	{&v1.ModelProvider{}, indexProviderSecret, func(o client.Object) []string {
		mp := o.(*v1.ModelProvider)
		if mp.Spec.Auth == nil {
			return nil
		}
		return []string{key(mp.Namespace, string(mp.Spec.Auth.SecretRef.Name))}
	}},
	{&v1.Tenant{}, indexTenantSecret, func(o client.Object) []string {
		t := o.(*v1.Tenant)
		var out []string
		for _, k := range t.Spec.APIKeys {
			out = append(out, key(t.Namespace, string(k.SecretRef.Name)))
		}
		return out
	}},
	{&v1.Tenant{}, indexTenantRoute, func(o client.Object) []string {
		t := o.(*v1.Tenant)
		var out []string
		for _, r := range t.Spec.Subscriptions {
			out = append(out, key(t.Namespace, string(r)))
		}
		return out
	}},
	{&v1.PaymentPolicy{}, indexPolicySecret, func(o client.Object) []string {
		p := o.(*v1.PaymentPolicy)
		if pr := p.Spec.PaymentRequired; pr != nil && pr.X402 != nil && pr.X402.Facilitator.SecretRef != nil {
			return []string{key(p.Namespace, string(pr.X402.Facilitator.SecretRef.Name))}
		}
		return nil
	}},
	{&gwapiv1.Gateway{}, indexGatewayClass, func(o client.Object) []string {
		return []string{string(o.(*gwapiv1.Gateway).Spec.GatewayClassName)}
	}},
	{&gwapiv1.Gateway{}, indexGatewayParams, func(o client.Object) []string {
		gw := o.(*gwapiv1.Gateway)
		if ns, name, ok := gatewayParams(gw); ok {
			return []string{key(ns, name)}
		}
		return nil
	}},
	{&gwapiv1.GatewayClass{}, indexClassParams, func(o client.Object) []string {
		ns, name, ok := translate.ClassProxyConfig(o.(*gwapiv1.GatewayClass))
		if !ok || name == "" {
			return nil
		}
		return []string{key(ns, name)}
	}},
	{&v1.ProxyConfig{}, indexProxyConfSecret, func(o client.Object) []string {
		pc := o.(*v1.ProxyConfig)
		if l := pc.Spec.Ledger; l != nil && l.Redis != nil && l.Redis.SecretRef != nil {
			return []string{key(pc.Namespace, string(l.Redis.SecretRef.Name))}
		}
		return nil
	}},
}

// gatewayParams is the ProxyConfig a Gateway's infrastructure.parametersRef names.
func gatewayParams(gw *gwapiv1.Gateway) (namespace, name string, ok bool) {
	if gw.Spec.Infrastructure == nil || gw.Spec.Infrastructure.ParametersRef == nil {
		return "", "", false
	}
	ref := gw.Spec.Infrastructure.ParametersRef
	if string(ref.Group) != v1.GroupVersion.Group || string(ref.Kind) != v1.ProxyConfigKind {
		return "", "", false
	}
	return gw.Namespace, ref.Name, true
}

// setupIndexes registers every field index with the manager's cache.
func setupIndexes(ctx context.Context, mgr manager.Manager) error {
	for _, ix := range indexers {
		if err := mgr.GetFieldIndexer().IndexField(ctx, ix.obj, ix.field, ix.extract); err != nil {
			return err
		}
	}
	return nil
}
