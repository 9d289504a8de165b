// Package translate is pure: it turns a snapshot of Kubernetes objects into
// the proxy configuration of a Gateway and the status of every input. No
// I/O, no clocks but the snapshot's, so that golden tests pin its behaviour.
package translate

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
)

// maxMessage caps condition messages well below the API's 32 KiB limit.
const maxMessage = 1024

// condition builds a condition stamped with the object's generation.
func condition[T ~string, R ~string](t T, ok bool, reason R, message string, generation int64) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	if len(message) > maxMessage {
		message = message[:maxMessage-3] + "..."
	}
	return metav1.Condition{Type: string(t), Status: status, Reason: string(reason), Message: message, ObservedGeneration: generation}
}

// verdict is the outcome of one check: a reason and a message, ok or not.
type verdict struct {
	ok      bool
	reason  v1.ConditionReason
	message string
}

func pass(reason v1.ConditionReason, message string) verdict {
	return verdict{ok: true, reason: reason, message: message}
}

func fail(reason v1.ConditionReason, message string) verdict {
	return verdict{reason: reason, message: message}
}

func (v verdict) condition(t v1.ConditionType, generation int64) metav1.Condition {
	return condition(t, v.ok, v.reason, v.message, generation)
}
