package controller

import (
	"context"
	"fmt"
	"slices"

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
	type kind struct {
		list    client.ObjectList
		applied []applied // nil entries are kinds not wanted now: all are pruned
	}
	kinds := []kind{
		{&corev1.ServiceAccountList{}, []applied{{o.ServiceAccount, o.ServiceAccount.Name}}},
		{&rbacv1.RoleList{}, []applied{{o.Role, o.Role.Name}}},
		{&rbacv1.RoleBindingList{}, []applied{{o.RoleBinding, o.RoleBinding.Name}}},
		{&corev1.ConfigMapList{}, []applied{{o.ConfigMap, o.ConfigMap.Name}, {o.Usage, o.Usage.Name}}},
		{&corev1.SecretList{}, []applied{{o.Secret, o.Secret.Name}}},
		{&corev1.PersistentVolumeClaimList{}, nil},
		{&appsv1.DeploymentList{}, nil},
		{&corev1.ServiceList{}, nil},
	}
	if o.PVC != nil {
		kinds[5].applied = []applied{{o.PVC, o.PVC.Name}}
	}
	if o.Deployment != nil {
		kinds[6].applied = []applied{{o.Deployment, o.Deployment.Name}}
	}
	if o.Service != nil {
		kinds[7].applied = []applied{{o.Service, o.Service.Name}}
	}
	for _, k := range kinds {
		var keep []string
		for _, a := range k.applied {
			if err := c.Apply(ctx, a.ac, FieldOwner, client.ForceOwnership); err != nil {
				return fmt.Errorf("applying %s: %w", *a.name, err)
			}
			keep = append(keep, *a.name)
		}
		if err := prune(ctx, c, namespace, gateway, k.list, keep); err != nil {
			return err
		}
	}
	return nil
}

// applied is one rendered object and its name.
type applied struct {
	ac   runtime.ApplyConfiguration
	name *string
}

// prune deletes the objects of one kind labelled for this Gateway, but keep.
func prune(ctx context.Context, c client.Client, namespace, gateway string, list client.ObjectList, keep []string) error {
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels(render.Labels(gateway))); err != nil {
		return err
	}
	objs, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		o := obj.(client.Object)
		if slices.Contains(keep, o.GetName()) {
			continue
		}
		if err := c.Delete(ctx, o, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("pruning %s: %w", o.GetName(), err)
		}
	}
	return nil
}
