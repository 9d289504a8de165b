package translate

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
)

// ClassProxyConfig is the ProxyConfig a GatewayClass's parametersRef names,
// as namespace and name; ok is false when the reference is not to a ProxyConfig.
func ClassProxyConfig(c *gwapiv1.GatewayClass) (namespace, name string, ok bool) {
	ref := c.Spec.ParametersRef
	if ref == nil {
		return "", "", true
	}
	if string(ref.Group) != v1.GroupVersion.Group || string(ref.Kind) != v1.ProxyConfigKind || ref.Namespace == nil {
		return "", "", false
	}
	return string(*ref.Namespace), ref.Name, true
}

// ClassConditions computes Accepted of a Tollgate GatewayClass. pc is the
// ProxyConfig its parametersRef names, nil if it has none or it is missing.
func ClassConditions(c *gwapiv1.GatewayClass, pc *v1.ProxyConfig) []metav1.Condition {
	accepted := verdict{ok: true, reason: v1.ConditionReason(gwapiv1.GatewayClassReasonAccepted), message: "Tollgate runs Gateways of this class."}
	ns, name, ok := ClassProxyConfig(c)
	invalid := v1.ConditionReason(gwapiv1.GatewayClassReasonInvalidParameters)
	switch {
	case !ok:
		accepted = fail(invalid, "parametersRef must name a ProxyConfig (group tollgate.dev) with a namespace.")
	case name != "" && pc == nil:
		accepted = fail(invalid, fmt.Sprintf("ProxyConfig %s/%s does not exist.", ns, name))
	case pc != nil && !ProxyConfigAccepted(pc).ok:
		accepted = fail(invalid, fmt.Sprintf("ProxyConfig %s/%s: %s", ns, name, ProxyConfigAccepted(pc).message))
	}
	return []metav1.Condition{accepted.condition(v1.ConditionType(gwapiv1.GatewayClassConditionStatusAccepted), c.Generation)}
}
