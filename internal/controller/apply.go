package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/internal/render"
)

// applyObjects server-side applies the rendered objects with one field owner
// and deletes what this Gateway owned before but no longer wants.
func applyObjects(ctx context.Context, c client.Client, namespace, gateway string, o render.Objects) error {
	type item struct {
		ac   runtime.ApplyConfiguration
		name *string
		list client.ObjectList
	}
	items := []item{
		{o.ServiceAccount, o.ServiceAccount.Name, &corev1.ServiceAccountList{}},
		{o.Role, o.Role.Name, &rbacv1.RoleList{}},
		{o.RoleBinding, o.RoleBinding.Name, &rbacv1.RoleBindingList{}},
		{o.ConfigMap, o.ConfigMap.Name, &corev1.ConfigMapList{}},
		{o.Secret, o.Secret.Name, &corev1.SecretList{}},
		{nil, nil, &corev1.PersistentVolumeClaimList{}},
		{nil, nil, &appsv1.DeploymentList{}},
		{nil, nil, &corev1.ServiceList{}},
	}
	if o.PVC != nil {
		items[5] = item{o.PVC, o.PVC.Name, items[5].list}
	}
	if o.Deployment != nil {
		items[6] = item{o.Deployment, o.Deployment.Name, items[6].list}
	}
	if o.Service != nil {
		items[7] = item{o.Service, o.Service.Name, items[7].list}
	}
	for _, it := range items {
		if it.ac != nil {
			if err := c.Apply(ctx, it.ac, FieldOwner, client.ForceOwnership); err != nil {
				return fmt.Errorf("applying %s: %w", *it.name, err)
			}
		}
		if err := prune(ctx, c, namespace, gateway, it.list, it.name); err != nil {
			return err
		}
	}
	return nil
}

// prune deletes the objects of one kind labelled for this Gateway, but keep.
func prune(ctx context.Context, c client.Client, namespace, gateway string, list client.ObjectList, keep *string) error {
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels(render.Labels(gateway))); err != nil {
		return err
	}
	objs, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		o := obj.(client.Object)
		if keep != nil && o.GetName() == *keep {
			continue
		}
		if err := c.Delete(ctx, o, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("pruning %s: %w", o.GetName(), err)
		}
	}
	return nil
}
