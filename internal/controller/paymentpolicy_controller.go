package controller

import (
	"context"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/translate"
)

// PaymentPolicyReconciler reports whether a policy is accepted, resolves and is enforced.
type PaymentPolicyReconciler struct {
	client.Client
	Events recorder.EventRecorder
	usage  throttle
	// warned remembers the soft limits already announced, per policy and tenant.
	warned sync.Map
}

// Reconcile writes a PaymentPolicy's conditions, ancestors and tenant count.
func (r *PaymentPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1.PaymentPolicy{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	in, gateways, err := r.inputs(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	conds := translate.PolicyConditions(p, in)
	accepted := conds[0].Status == metav1.ConditionTrue
	now := time.Now()

	st := p.Status
	st.Ancestors = nil
	var programmed []string
	for _, gw := range gateways {
		ref := gwapiv1.ParentReference{Group: new(gwapiv1.Group(gwapiv1.GroupName)), Kind: new(gwapiv1.Kind("Gateway")),
			Namespace: new(gwapiv1.Namespace(gw.Namespace)), Name: gwapiv1.ObjectName(gw.Name)}
		var old []metav1.Condition
		for _, a := range p.Status.Ancestors {
			if a.AncestorRef.Name == ref.Name && a.AncestorRef.Namespace != nil && *a.AncestorRef.Namespace == *ref.Namespace {
				old = a.Conditions
			}
		}
		st.Ancestors = append(st.Ancestors, gwapiv1.PolicyAncestorStatus{AncestorRef: ref, ControllerName: v1.ControllerName,
			Conditions: mergeConditions(old, conds[:1], now)})
		if meta.IsStatusConditionTrue(gw.Status.Conditions, string(gwapiv1.GatewayConditionProgrammed)) {
			programmed = append(programmed, gw.Name)
		}
		if len(st.Ancestors) == 16 { // the Gateway API maximum
			break
		}
	}
	conds = append(conds, translate.PolicyEnforced(p, accepted, programmed))
	st.Conditions = mergeConditions(p.Status.Conditions, conds, now)
	st.TenantCount = int32(len(translate.PolicyTenants(p, in.Tenants)))
	st.ObservedGeneration = p.Generation
	reports, err := usageReports(ctx, r.Client)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.softLimitEvents(p, reports)
	var requeue time.Duration
	if top := topTenants(reports, key(p.Namespace, p.Name)); top != nil && !equality.Semantic.DeepEqual(top, p.Status.TopTenants) {
		ok, wait := r.usage.allow(req.NamespacedName, now)
		if ok {
			st.TopTenants = top
			r.usage.wrote(req.NamespacedName, now)
		}
		requeue = wait
	}
	return ctrl.Result{RequeueAfter: requeue}, applyStatus(ctx, r.Client, p, p.Status, st)
}

// inputs reads the policy's namespace and the Tollgate Gateways it reaches:
// those it targets, and the parents of the routes its targets use.
func (r *PaymentPolicyReconciler) inputs(ctx context.Context, p *v1.PaymentPolicy) (translate.PolicyInputs, []*gwapiv1.Gateway, error) {
	ns := p.Namespace
	in := translate.PolicyInputs{Tenants: map[string]*v1.Tenant{}, Routes: map[string]*v1.AIRoute{}, Gateways: map[string]*gwapiv1.Gateway{}, Secrets: map[string]*corev1.Secret{}}
	tenants, routes, policies := &v1.TenantList{}, &v1.AIRouteList{}, &v1.PaymentPolicyList{}
	for _, l := range []client.ObjectList{tenants, routes, policies} {
		if err := r.List(ctx, l, client.InNamespace(ns)); err != nil {
			return in, nil, err
		}
	}
	for i := range tenants.Items {
		in.Tenants[key(ns, tenants.Items[i].Name)] = &tenants.Items[i]
	}
	for i := range policies.Items {
		in.Policies = append(in.Policies, &policies.Items[i])
	}
	reached := map[types.NamespacedName]bool{}
	tenantTargets := p.Spec.TargetSelector != nil
	for _, ref := range p.Spec.TargetRefs {
		switch string(ref.Kind) {
		case "Gateway":
			reached[types.NamespacedName{Namespace: ns, Name: string(ref.Name)}] = true
		case v1.TenantKind:
			tenantTargets = true
		}
	}
	for i := range routes.Items {
		rt := &routes.Items[i]
		in.Routes[key(ns, rt.Name)] = rt
		if tenantTargets || slices.ContainsFunc(p.Spec.TargetRefs, func(ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) bool {
			return string(ref.Kind) == v1.AIRouteKind && string(ref.Name) == rt.Name
		}) {
			for _, pr := range rt.Spec.ParentRefs {
				if k, ok := translate.ParentKey(ns, pr); ok {
					reached[k] = true
				}
			}
		}
	}
	var gateways []*gwapiv1.Gateway
	for _, k := range sortedKeys(reached) {
		pa, err := parent(ctx, r.Client, k)
		if err != nil {
			return in, nil, err
		}
		if pa.Gateway != nil && pa.Ours {
			gateways = append(gateways, pa.Gateway)
			in.Gateways[k.String()] = pa.Gateway
		}
	}
	if pr := p.Spec.PaymentRequired; pr != nil && pr.X402 != nil && pr.X402.Facilitator.SecretRef != nil {
		s, err := optionalSecret(ctx, r.Client, ns, string(pr.X402.Facilitator.SecretRef.Name))
		if err != nil {
			return in, nil, err
		}
		if s != nil {
			in.Secrets[key(ns, s.Name)] = s
		}
	}
	return in, gateways, nil
}

func sortedKeys(m map[types.NamespacedName]bool) []types.NamespacedName {
	out := make([]types.NamespacedName, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b types.NamespacedName) int {
		if a.String() < b.String() {
			return -1
		}
		if a.String() > b.String() {
			return 1
		}
		return 0
	})
	return out
}

// SetupWithManager watches policies and everything in their namespace they depend on.
func (r *PaymentPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	policiesInNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return requestsOf(ctx, r.Client, &v1.PaymentPolicyList{}, client.InNamespace(o.GetNamespace()))
	})
	return ctrl.NewControllerManagedBy(mgr).Named("paymentpolicy").For(&v1.PaymentPolicy{}).
		Watches(&v1.Tenant{}, policiesInNamespace).
		Watches(&v1.AIRoute{}, policiesInNamespace).
		Watches(&gwapiv1.Gateway{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			// A Gateway's Programmed state decides Enforced of the policies that reach it:
			// those in its namespace and in the namespaces of its routes.
			out := requestsOf(ctx, r.Client, &v1.PaymentPolicyList{}, client.InNamespace(o.GetNamespace()))
			routes := &v1.AIRouteList{}
			if err := r.List(ctx, routes, client.MatchingFields{indexRouteParent: key(o.GetNamespace(), o.GetName())}); err == nil {
				seen := map[string]bool{o.GetNamespace(): true}
				for _, rt := range routes.Items {
					if !seen[rt.Namespace] {
						seen[rt.Namespace] = true
						out = append(out, requestsOf(ctx, r.Client, &v1.PaymentPolicyList{}, client.InNamespace(rt.Namespace))...)
					}
				}
			}
			return out
		})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return requestsOf(ctx, r.Client, &v1.PaymentPolicyList{}, client.MatchingFields{indexPolicySecret: key(o.GetNamespace(), o.GetName())})
		})).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return objectsInReport(o, true)
		})).
		Complete(r)
}

// softLimitEvents records a Warning event the first time a tenant crosses a
// soft limit of the policy (and again for each higher limit).
func (r *PaymentPolicyReconciler) softLimitEvents(p *v1.PaymentPolicy, reports []*dataplane.UsageReport) {
	name := key(p.Namespace, p.Name)
	for _, rep := range reports {
		for _, sl := range rep.SoftLimits {
			if sl.Policy != name {
				continue
			}
			k := name + "|" + sl.Tenant
			if prev, ok := r.warned.Load(k); ok && prev.(int32) >= sl.Percent {
				continue
			}
			r.warned.Store(k, sl.Percent)
			r.Events.Eventf(p, nil, corev1.EventTypeWarning, "SoftLimitCrossed", "Meter",
				"Tenant %s has spent %d%% of what policy %s allows.", sl.Tenant, sl.Percent, p.Name)
		}
	}
}
