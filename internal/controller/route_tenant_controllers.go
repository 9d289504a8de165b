package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/translate"
)

// AIRouteReconciler reports, per parent Gateway, whether a route is accepted and resolves.
type AIRouteReconciler struct{ client.Client }

// Reconcile writes status.parents of an AIRoute.
func (r *AIRouteReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	route := &v1.AIRoute{}
	if err := r.Get(ctx, req.NamespacedName, route); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	parents := map[types.NamespacedName]translate.Parent{}
	for _, ref := range route.Spec.ParentRefs {
		k, ok := translate.ParentKey(route.Namespace, ref)
		if !ok {
			continue
		}
		p, err := parent(ctx, r.Client, k)
		if err != nil {
			return ctrl.Result{}, err
		}
		parents[k] = p
	}
	providers := &v1.ModelProviderList{}
	if err := r.List(ctx, providers, client.InNamespace(route.Namespace)); err != nil {
		return ctrl.Result{}, err
	}
	byName := map[string]*v1.ModelProvider{}
	for i := range providers.Items {
		byName[key(route.Namespace, providers.Items[i].Name)] = &providers.Items[i]
	}
	st := v1.AIRouteStatus{Parents: translate.RouteParents(route, parents, byName)}
	now := time.Now()
	for i := range st.Parents {
		var old []metav1.Condition
		if i < len(route.Status.Parents) {
			old = route.Status.Parents[i].Conditions
		}
		st.Parents[i].Conditions = mergeConditions(old, st.Parents[i].Conditions, now)
	}
	return ctrl.Result{}, applyStatus(ctx, r.Client, route, route.Status, st)
}

// parent reads a Gateway and whether Tollgate runs it.
func parent(ctx context.Context, c client.Client, k types.NamespacedName) (translate.Parent, error) {
	gw := &gwapiv1.Gateway{}
	if err := c.Get(ctx, k, gw); err != nil {
		if apierrors.IsNotFound(err) {
			return translate.Parent{}, nil
		}
		return translate.Parent{}, err
	}
	class := &gwapiv1.GatewayClass{}
	if err := c.Get(ctx, client.ObjectKey{Name: string(gw.Spec.GatewayClassName)}, class); err != nil && !apierrors.IsNotFound(err) {
		return translate.Parent{}, err
	}
	return translate.Parent{Gateway: gw, Ours: class.Spec.ControllerName == v1.ControllerName}, nil
}

// SetupWithManager watches AIRoutes, their Gateways and providers.
func (r *AIRouteReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("airoute").For(&v1.AIRoute{}).
		Watches(&gwapiv1.Gateway{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return requestsOf(ctx, r.Client, &v1.AIRouteList{}, client.MatchingFields{indexRouteParent: key(o.GetNamespace(), o.GetName())})
		})).
		Watches(&v1.ModelProvider{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return requestsOf(ctx, r.Client, &v1.AIRouteList{}, client.MatchingFields{indexRouteProvider: key(o.GetNamespace(), o.GetName())})
		})).
		Complete(r)
}

// TenantReconciler generates missing API keys and reports keys, subscriptions and readiness.
type TenantReconciler struct {
	client.Client
	Events recorder.EventRecorder
	usage  throttle
}

// KeyPrefix starts every generated tenant key, so that leaked keys are recognisable.
const KeyPrefix = "tg_"

// Reconcile generates missing key Secrets, then writes the Tenant's status (but usage).
func (r *TenantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	t := &v1.Tenant{}
	if err := r.Get(ctx, req.NamespacedName, t); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	secrets := map[string]*corev1.Secret{}
	for _, k := range t.Spec.APIKeys {
		s, err := r.ensureKey(ctx, t, k)
		if err != nil {
			return ctrl.Result{}, err
		}
		if s != nil {
			secrets[key(t.Namespace, s.Name)] = s
		}
	}
	routes := &v1.AIRouteList{}
	if err := r.List(ctx, routes, client.InNamespace(t.Namespace)); err != nil {
		return ctrl.Result{}, err
	}
	byName := map[string]*v1.AIRoute{}
	for i := range routes.Items {
		byName[key(t.Namespace, routes.Items[i].Name)] = &routes.Items[i]
	}
	now := time.Now()
	st := translate.TenantStatus(t, secrets, byName)
	st.Conditions = mergeConditions(t.Status.Conditions, st.Conditions, now)
	st.ObservedGeneration = t.Generation
	reports, err := usageReports(ctx, r.Client)
	if err != nil {
		return ctrl.Result{}, err
	}
	st.Usage = t.Status.Usage
	var requeue time.Duration
	if u := tenantUsage(reports, key(t.Namespace, t.Name)); u != nil && !sameUsage(u, t.Status.Usage) {
		ok, wait := r.usage.allow(req.NamespacedName, now)
		if ok {
			st.Usage = u
			r.usage.wrote(req.NamespacedName, now)
		}
		requeue = wait
	}
	return ctrl.Result{RequeueAfter: requeue}, applyStatus(ctx, r.Client, t, t.Status, st)
}

// sameUsage compares usage figures, not when they were read.
func sameUsage(a, b *v1.TenantUsage) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.UpdatedAt, y.UpdatedAt = nil, nil
	return equality.Semantic.DeepEqual(x, y)
}

// ensureKey returns the key's Secret, generating it (owned by the Tenant)
// when it does not exist. A Secret the user made is never overwritten.
func (r *TenantReconciler) ensureKey(ctx context.Context, t *v1.Tenant, k v1.TenantAPIKey) (*corev1.Secret, error) {
	s, err := optionalSecret(ctx, r.Client, t.Namespace, string(k.SecretRef.Name))
	if err != nil || s != nil {
		return s, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	s = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: string(k.SecretRef.Name), Namespace: t.Namespace, Labels: map[string]string{"tollgate.dev/tenant": t.Name}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{k.SecretRef.Key: []byte(KeyPrefix + base64.RawURLEncoding.EncodeToString(raw))},
	}
	if err := controllerutil.SetControllerReference(t, s, r.Scheme()); err != nil {
		return nil, err
	}
	if err := r.Create(ctx, s); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("secret %s appeared while generating it: %w", s.Name, err) // retried by the queue
		}
		return nil, err
	}
	r.Events.Eventf(t, s, corev1.EventTypeNormal, "KeyGenerated", "GenerateKey", "Generated API key %s into Secret %s.", k.Name, s.Name)
	return s, nil
}

// SetupWithManager watches Tenants, their key Secrets and the routes they subscribe to.
func (r *TenantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("tenant").For(&v1.Tenant{}).
		Owns(&corev1.Secret{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return requestsOf(ctx, r.Client, &v1.TenantList{}, client.MatchingFields{indexTenantSecret: key(o.GetNamespace(), o.GetName())})
		})).
		Watches(&v1.AIRoute{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return requestsOf(ctx, r.Client, &v1.TenantList{}, client.MatchingFields{indexTenantRoute: key(o.GetNamespace(), o.GetName())})
		})).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return objectsInReport(o, false)
		})).
		Complete(r)
}
