package controller

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/render"
	"github.com/tollgate-dev/tollgate/internal/translate"
)

// GatewayReconciler turns a Tollgate Gateway and everything attached to it
// into proxy config, proxy objects and Gateway status.
type GatewayReconciler struct {
	client.Client
	Events     recorder.EventRecorder
	ProxyImage string
}

// Reconcile gathers, translates, renders, applies and writes status.
func (r *GatewayReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	gw := &gwapiv1.Gateway{}
	if err := r.Get(ctx, req.NamespacedName, gw); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	class := &gwapiv1.GatewayClass{}
	if err := r.Get(ctx, client.ObjectKey{Name: string(gw.Spec.GatewayClassName)}, class); err != nil || class.Spec.ControllerName != v1.ControllerName {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	now := time.Now()
	snap, err := gather(ctx, r.Client, gw, class, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	res := translate.Gateway(snap)
	// An invalid Gateway keeps its last good proxies serving: nothing is applied or pruned.
	if res.Config != nil {
		objs := render.Render(render.Input{GatewayName: gw.Name, GatewayNamespace: gw.Namespace, GatewayUID: gw.UID,
			Image: r.ProxyImage, ProxyConfig: snap.ProxyConfig, Config: res.Config, ConfigJSON: res.ConfigJSON, Credentials: res.Credentials})
		if err := applyObjects(ctx, r.Client, gw.Namespace, gw.Name, objs); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.writeStatus(ctx, gw, res, now); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: res.RequeueAfter}, nil
}

func (r *GatewayReconciler) writeStatus(ctx context.Context, gw *gwapiv1.Gateway, res translate.GatewayResult, now time.Time) error {
	st := gwapiv1.GatewayStatus{Conditions: mergeConditions(gw.Status.Conditions, res.Conditions, now), Listeners: res.Listeners}
	for i := range st.Listeners {
		old := []metav1.Condition(nil)
		for _, l := range gw.Status.Listeners {
			if l.Name == st.Listeners[i].Name {
				old = l.Conditions
			}
		}
		st.Listeners[i].Conditions = mergeConditions(old, st.Listeners[i].Conditions, now)
	}
	svc := &corev1.Service{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: gw.Namespace, Name: dataplane.Name(gw.Name, "")}, svc); err == nil && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		st.Addresses = []gwapiv1.GatewayStatusAddress{{Type: new(gwapiv1.IPAddressType), Value: svc.Spec.ClusterIP}}
	}
	if err := applyStatus(ctx, r.Client, gw, gw.Status, st); err != nil {
		return err
	}
	transitionEvent(r.Events, gw, gw.Status.Conditions, st.Conditions, string(gwapiv1.GatewayConditionProgrammed), "Program")
	return nil
}

// SetupWithManager watches Gateways, the objects they own, and every input
// that affects them, mapped through field indexes to just those Gateways.
func (r *GatewayReconciler) SetupWithManager(mgr ctrl.Manager) error {
	m := mapper{mgr.GetClient()}
	return ctrl.NewControllerManagedBy(mgr).
		Named("gateway").
		For(&gwapiv1.Gateway{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Secret{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Watches(&gwapiv1.GatewayClass{}, handler.EnqueueRequestsFromMapFunc(m.gatewaysOfClass)).
		Watches(&v1.ProxyConfig{}, handler.EnqueueRequestsFromMapFunc(m.gatewaysOfProxyConfig)).
		Watches(&v1.AIRoute{}, handler.EnqueueRequestsFromMapFunc(m.parentsOfRoute)).
		Watches(&v1.ModelProvider{}, handler.EnqueueRequestsFromMapFunc(m.gatewaysOfProvider)).
		Watches(&v1.Tenant{}, handler.EnqueueRequestsFromMapFunc(m.gatewaysOfObjectNamespace)).
		Watches(&v1.PaymentPolicy{}, handler.EnqueueRequestsFromMapFunc(m.gatewaysOfObjectNamespace)).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(m.gatewaysOfSecret)).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(m.gatewayOfLease)).
		Complete(r)
}

// mapper maps a changed object to the Gateways it affects.
type mapper struct{ c client.Client }

func (m mapper) gatewaysOfClass(ctx context.Context, o client.Object) []reconcile.Request {
	return m.list(ctx, &gwapiv1.GatewayList{}, client.MatchingFields{indexGatewayClass: o.GetName()})
}

func (m mapper) gatewaysOfProxyConfig(ctx context.Context, o client.Object) []reconcile.Request {
	k := key(o.GetNamespace(), o.GetName())
	out := m.list(ctx, &gwapiv1.GatewayList{}, client.MatchingFields{indexGatewayParams: k})
	classes := &gwapiv1.GatewayClassList{}
	if err := m.c.List(ctx, classes, client.MatchingFields{indexClassParams: k}); err == nil {
		for _, c := range classes.Items {
			out = append(out, m.gatewaysOfClass(ctx, &c)...)
		}
	}
	return out
}

func (m mapper) parentsOfRoute(_ context.Context, o client.Object) []reconcile.Request {
	r := o.(*v1.AIRoute)
	var out []reconcile.Request
	for _, ref := range r.Spec.ParentRefs {
		if k, ok := translate.ParentKey(r.Namespace, ref); ok {
			out = append(out, reconcile.Request{NamespacedName: k})
		}
	}
	return out
}

func (m mapper) gatewaysOfProvider(ctx context.Context, o client.Object) []reconcile.Request {
	routes := &v1.AIRouteList{}
	if err := m.c.List(ctx, routes, client.MatchingFields{indexRouteProvider: key(o.GetNamespace(), o.GetName())}); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range routes.Items {
		out = append(out, m.parentsOfRoute(ctx, &routes.Items[i])...)
	}
	return out
}

// gatewaysOfNamespace are the Gateways in a namespace and those its routes
// attach to: the Gateways whose config holds that namespace's tenants and policies.
func (m mapper) gatewaysOfNamespace(ctx context.Context, ns string) []reconcile.Request {
	out := m.list(ctx, &gwapiv1.GatewayList{}, client.InNamespace(ns))
	routes := &v1.AIRouteList{}
	if err := m.c.List(ctx, routes, client.InNamespace(ns)); err == nil {
		for i := range routes.Items {
			out = append(out, m.parentsOfRoute(ctx, &routes.Items[i])...)
		}
	}
	return out
}

func (m mapper) gatewaysOfObjectNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	return m.gatewaysOfNamespace(ctx, o.GetNamespace())
}

// gatewaysOfSecret maps only Secrets that a provider, tenant, policy or
// ProxyConfig names; every other Secret change is ignored.
func (m mapper) gatewaysOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	k := key(o.GetNamespace(), o.GetName())
	for _, q := range []struct {
		list  client.ObjectList
		index string
	}{
		{&v1.ModelProviderList{}, indexProviderSecret},
		{&v1.TenantList{}, indexTenantSecret},
		{&v1.PaymentPolicyList{}, indexPolicySecret},
		{&v1.ProxyConfigList{}, indexProxyConfSecret},
	} {
		if err := m.c.List(ctx, q.list, client.MatchingFields{q.index: k}); err == nil && meta.LenList(q.list) > 0 {
			return m.gatewaysOfNamespace(ctx, o.GetNamespace())
		}
	}
	return nil
}

func (m mapper) gatewayOfLease(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[dataplane.LabelHeartbeat]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

func (m mapper) list(ctx context.Context, l *gwapiv1.GatewayList, opts ...client.ListOption) []reconcile.Request {
	if err := m.c.List(ctx, l, opts...); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(l.Items))
	for _, gw := range l.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&gw)})
	}
	return out
}
