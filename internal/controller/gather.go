package controller

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/translate"
)

// gather reads every input of one Gateway from the cache.
func gather(ctx context.Context, c client.Client, gw *gwapiv1.Gateway, class *gwapiv1.GatewayClass, now time.Time) (*translate.Snapshot, error) {
	s := &translate.Snapshot{Now: now, Gateway: gw, Class: class,
		Providers: map[string]*v1.ModelProvider{}, Tenants: map[string]*v1.Tenant{}, Secrets: map[string]*corev1.Secret{}}

	pcNamespace, pcName, ok := gatewayParams(gw)
	if !ok {
		pcNamespace, pcName, _ = translate.ClassProxyConfig(class)
	}
	if pcName != "" {
		pc := &v1.ProxyConfig{}
		switch err := c.Get(ctx, client.ObjectKey{Namespace: pcNamespace, Name: pcName}, pc); {
		case apierrors.IsNotFound(err):
			s.MissingProxyConfig = key(pcNamespace, pcName)
		case err != nil:
			return nil, err
		default:
			s.ProxyConfig = pc
			if l := pc.Spec.Ledger; l != nil && l.Redis != nil && l.Redis.SecretRef != nil {
				if err := getSecret(ctx, c, s, pc.Namespace, string(l.Redis.SecretRef.Name)); err != nil {
					return nil, err
				}
			}
		}
	}

	routes := &v1.AIRouteList{}
	if err := c.List(ctx, routes, client.MatchingFields{indexRouteParent: key(gw.Namespace, gw.Name)}); err != nil {
		return nil, err
	}
	namespaces := map[string]bool{gw.Namespace: true}
	for i := range routes.Items {
		s.Routes = append(s.Routes, &routes.Items[i])
		namespaces[routes.Items[i].Namespace] = true
	}
	for ns := range namespaces {
		if err := gatherNamespace(ctx, c, s, ns); err != nil {
			return nil, err
		}
	}

	leases := &coordinationv1.LeaseList{}
	if err := c.List(ctx, leases, client.InNamespace(gw.Namespace), client.MatchingLabels{dataplane.LabelHeartbeat: gw.Name}); err != nil {
		return nil, err
	}
	for _, l := range leases.Items {
		if b, ok := heartbeat(&l); ok {
			s.Heartbeats = append(s.Heartbeats, b)
		}
	}
	return s, nil
}

// gatherNamespace reads the providers, tenants and policies of one namespace and the Secrets they name.
func gatherNamespace(ctx context.Context, c client.Client, s *translate.Snapshot, ns string) error {
	providers := &v1.ModelProviderList{}
	tenants := &v1.TenantList{}
	policies := &v1.PaymentPolicyList{}
	for _, l := range []client.ObjectList{providers, tenants, policies} {
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			return err
		}
	}
	var secrets []string
	for i := range providers.Items {
		mp := &providers.Items[i]
		s.Providers[key(ns, mp.Name)] = mp
		if mp.Spec.Auth != nil {
			secrets = append(secrets, string(mp.Spec.Auth.SecretRef.Name))
		}
	}
	for i := range tenants.Items {
		t := &tenants.Items[i]
		s.Tenants[key(ns, t.Name)] = t
		for _, k := range t.Spec.APIKeys {
			secrets = append(secrets, string(k.SecretRef.Name))
		}
	}
	for i := range policies.Items {
		p := &policies.Items[i]
		s.Policies = append(s.Policies, p)
		if pr := p.Spec.PaymentRequired; pr != nil && pr.X402 != nil && pr.X402.Facilitator.SecretRef != nil {
			secrets = append(secrets, string(pr.X402.Facilitator.SecretRef.Name))
		}
	}
	for _, name := range secrets {
		if err := getSecret(ctx, c, s, ns, name); err != nil {
			return err
		}
	}
	return nil
}

func getSecret(ctx context.Context, c client.Client, s *translate.Snapshot, ns, name string) error {
	if _, done := s.Secrets[key(ns, name)]; done {
		return nil
	}
	sec := &corev1.Secret{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sec); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	s.Secrets[key(ns, name)] = sec
	return nil
}

// heartbeat reads a proxy's Lease.
func heartbeat(l *coordinationv1.Lease) (translate.Heartbeat, bool) {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil || l.Spec.HolderIdentity == nil {
		return translate.Heartbeat{}, false
	}
	return translate.Heartbeat{
		Holder:  *l.Spec.HolderIdentity,
		Hash:    l.Annotations[dataplane.AnnotationConfigHash],
		Expires: l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second),
	}, true
}
