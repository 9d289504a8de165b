package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/translate"
)

// GatewayClassReconciler accepts the GatewayClasses Tollgate runs.
type GatewayClassReconciler struct{ client.Client }

// Reconcile sets Accepted on a Tollgate GatewayClass.
func (r *GatewayClassReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	class := &gwapiv1.GatewayClass{}
	if err := r.Get(ctx, req.NamespacedName, class); err != nil || class.Spec.ControllerName != v1.ControllerName {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var pc *v1.ProxyConfig
	if ns, name, ok := translate.ClassProxyConfig(class); ok && name != "" {
		pc = &v1.ProxyConfig{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pc); err != nil {
			if !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
			pc = nil
		}
	}
	st := class.Status
	st.Conditions = mergeConditions(class.Status.Conditions, translate.ClassConditions(class, pc), time.Now())
	return ctrl.Result{}, applyStatus(ctx, r.Client, class, class.Status, st)
}

// SetupWithManager watches GatewayClasses and the ProxyConfigs they name.
func (r *GatewayClassReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("gatewayclass").For(&gwapiv1.GatewayClass{}).
		Watches(&v1.ProxyConfig{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return requestsOf(ctx, r.Client, &gwapiv1.GatewayClassList{}, client.MatchingFields{indexClassParams: key(o.GetNamespace(), o.GetName())})
		})).
		Complete(r)
}

// ProxyConfigReconciler validates ProxyConfigs.
type ProxyConfigReconciler struct{ client.Client }

// Reconcile sets Accepted on a ProxyConfig.
func (r *ProxyConfigReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pc := &v1.ProxyConfig{}
	if err := r.Get(ctx, req.NamespacedName, pc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	st := v1.ProxyConfigStatus{Conditions: mergeConditions(pc.Status.Conditions, translate.ProxyConfigConditions(pc), time.Now()), ObservedGeneration: pc.Generation}
	return ctrl.Result{}, applyStatus(ctx, r.Client, pc, pc.Status, st)
}

// SetupWithManager watches ProxyConfigs.
func (r *ProxyConfigReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("proxyconfig").For(&v1.ProxyConfig{}).Complete(r)
}

// ModelProviderReconciler reports whether providers and their credentials resolve.
type ModelProviderReconciler struct {
	client.Client
	Events recorder.EventRecorder
}

// Reconcile sets Accepted, ResolvedRefs and Ready on a ModelProvider.
func (r *ModelProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	mp := &v1.ModelProvider{}
	if err := r.Get(ctx, req.NamespacedName, mp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var secret *corev1.Secret
	if mp.Spec.Auth != nil {
		var err error
		if secret, err = optionalSecret(ctx, r.Client, mp.Namespace, string(mp.Spec.Auth.SecretRef.Name)); err != nil {
			return ctrl.Result{}, err
		}
	}
	st := v1.ModelProviderStatus{Conditions: mergeConditions(mp.Status.Conditions, translate.ProviderConditions(mp, secret), time.Now()), ObservedGeneration: mp.Generation}
	if err := applyStatus(ctx, r.Client, mp, mp.Status, st); err != nil {
		return ctrl.Result{}, err
	}
	transitionEvent(r.Events, mp, mp.Status.Conditions, st.Conditions, string(v1.ConditionResolvedRefs), "ResolveRefs")
	return ctrl.Result{}, nil
}

// SetupWithManager watches ModelProviders and the Secrets they name.
func (r *ModelProviderReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("modelprovider").For(&v1.ModelProvider{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return requestsOf(ctx, r.Client, &v1.ModelProviderList{}, client.MatchingFields{indexProviderSecret: key(o.GetNamespace(), o.GetName())})
		})).
		Complete(r)
}

// optionalSecret reads a Secret, returning nil when it does not exist.
func optionalSecret(ctx context.Context, c client.Client, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return s, nil
}

// requestsOf lists objects and turns them into reconcile requests.
func requestsOf(ctx context.Context, c client.Client, l client.ObjectList, opts ...client.ListOption) []reconcile.Request {
	if err := c.List(ctx, l, opts...); err != nil {
		return nil
	}
	var out []reconcile.Request
	_ = forEach(l, func(o client.Object) {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	})
	return out
}
