package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// KeyHash is the hex SHA-256 of an API key: all the proxy ever sees of it.
func KeyHash(apiKey []byte) string {
	sum := sha256.Sum256(apiKey)
	return hex.EncodeToString(sum[:])
}

// Fingerprint is the short, safe-to-show prefix of a key's hash.
func Fingerprint(apiKey []byte) string { return KeyHash(apiKey)[:12] }

// TenantStatus computes a Tenant's status but usage: key fingerprints,
// subscription states and Ready. secrets and routes are keyed by
// "namespace/name".
func TenantStatus(t *v1.Tenant, secrets map[string]*corev1.Secret, routes map[string]*v1.AIRoute) v1.TenantStatus {
	st := v1.TenantStatus{}
	var missing []string
	for _, k := range t.Spec.APIKeys {
		value := secretValue(secrets[key(t.Namespace, string(k.SecretRef.Name))], k.SecretRef.Key)
		if value == nil {
			missing = append(missing, string(k.Name))
			continue
		}
		st.Keys = append(st.Keys, v1.KeyStatus{Name: k.Name, Fingerprint: Fingerprint(value)})
	}
	for _, name := range t.Spec.Subscriptions {
		state := v1.SubscriptionPending
		if r := routes[key(t.Namespace, string(name))]; r != nil && TenantApproved(r, t.Name) {
			state = v1.SubscriptionApproved
		}
		st.Subscriptions = append(st.Subscriptions, v1.SubscriptionStatus{Route: name, State: state})
	}
	ready := pass(v1.ReasonReady, "The tenant can call the gateway.")
	switch {
	case t.Spec.Suspended:
		ready = fail(v1.ReasonSuspended, "The tenant is suspended: every request is refused with 403.")
	case len(missing) > 0:
		ready = fail(v1.ReasonKeysPending, fmt.Sprintf("Waiting for the Secrets of keys %s.", strings.Join(missing, ", ")))
	case len(t.Spec.APIKeys) == 0:
		ready = fail(v1.ReasonKeysPending, "The tenant has no API keys.")
	}
	st.Conditions = []metav1.Condition{ready.condition(v1.ConditionReady, t.Generation)}
	return st
}

// TenantApproved says whether a route admits the tenant: open routes admit
// everyone, others only the tenants they list.
func TenantApproved(r *v1.AIRoute, tenant string) bool {
	if r.Spec.Access == nil || r.Spec.Access.Mode != v1.AccessApprovalRequired {
		return true
	}
	return slices.Contains(r.Spec.Access.Tenants, v1.ObjectName(tenant))
}

func secretValue(s *corev1.Secret, k string) []byte {
	if s == nil || len(s.Data[k]) == 0 {
		return nil
	}
	return s.Data[k]
}

// tenant translates a Tenant; keys whose Secret is missing are left out.
func tenant(t *v1.Tenant, secrets map[string]*corev1.Secret) dataplane.Tenant {
	out := dataplane.Tenant{Name: key(t.Namespace, t.Name), DisplayName: t.Spec.DisplayName, Suspended: t.Spec.Suspended}
	for _, k := range t.Spec.APIKeys {
		if value := secretValue(secrets[key(t.Namespace, string(k.SecretRef.Name))], k.SecretRef.Key); value != nil {
			out.Keys = append(out.Keys, dataplane.Key{Name: string(k.Name), SHA256: KeyHash(value)})
		}
	}
	for _, m := range t.Spec.AllowedModels {
		out.AllowedModels = append(out.AllowedModels, string(m))
	}
	for _, c := range t.Spec.Credits {
		amount, err := money.Parse(string(c.Amount))
		if err != nil {
			continue // CEL refuses such amounts; never grant what cannot be read
		}
		dc := dataplane.Credit{ID: c.ID, Amount: amount}
		if c.ExpiresAt != nil {
			at := c.ExpiresAt.UTC()
			dc.ExpiresAt = &at
		}
		out.Credits = append(out.Credits, dc)
	}
	return out
}
