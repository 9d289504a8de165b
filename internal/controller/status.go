package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// FieldOwner is the one field manager of everything Tollgate writes.
const FieldOwner = client.FieldOwner("tollgate")

// mergeConditions returns desired with the transition times of existing
// conditions kept where their status did not change, so that an unchanged
// status compares equal and is not written again.
func mergeConditions(existing, desired []metav1.Condition, now time.Time) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(desired))
	for _, d := range desired {
		d.LastTransitionTime = metav1.NewTime(now.UTC().Truncate(time.Second))
		if old := meta.FindStatusCondition(existing, d.Type); old != nil && old.Status == d.Status {
			d.LastTransitionTime = old.LastTransitionTime
		}
		out = append(out, d)
	}
	return out
}

// transitionEvent records an Event when a condition changes status: True is
// Normal news, anything else a Warning.
func transitionEvent(rec recorder.EventRecorder, obj client.Object, old, cur []metav1.Condition, typ, action string) {
	is := meta.FindStatusCondition(cur, typ)
	if is == nil {
		return
	}
	if was := meta.FindStatusCondition(old, typ); was != nil && was.Status == is.Status {
		return
	}
	kind := corev1.EventTypeNormal
	if is.Status != metav1.ConditionTrue {
		kind = corev1.EventTypeWarning
	}
	rec.Eventf(obj, nil, kind, is.Reason, action, is.Message)
}

// applyStatus writes an object's status with server-side apply, unless the
// new status equals the old one: a reconcile that changes nothing writes nothing.
func applyStatus[S any](ctx context.Context, c client.Client, current client.Object, oldStatus, newStatus S) error {
	if equality.Semantic.DeepEqual(oldStatus, newStatus) {
		return nil
	}
	gvk, err := apiutil.GVKForObject(current, c.Scheme())
	if err != nil {
		return err
	}
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&newStatus)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": st}}
	u.SetGroupVersionKind(gvk)
	u.SetName(current.GetName())
	u.SetNamespace(current.GetNamespace())
	return c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), FieldOwner, client.ForceOwnership)
}
