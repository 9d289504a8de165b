package translate

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

// Parent is what a route needs to know about one parent Gateway.
type Parent struct {
	Gateway *gwapiv1.Gateway // nil when it does not exist
	Ours    bool             // its GatewayClass is run by Tollgate
}

// ParentKey is the Gateway a parentRef of a route points at.
func ParentKey(routeNamespace string, ref gwapiv1.ParentReference) (types.NamespacedName, bool) {
	if (ref.Group != nil && *ref.Group != gwapiv1.GroupName) || (ref.Kind != nil && *ref.Kind != "Gateway") {
		return types.NamespacedName{}, false
	}
	ns := routeNamespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	return types.NamespacedName{Namespace: ns, Name: string(ref.Name)}, true
}

// RouteParents computes status.parents of an AIRoute: one entry per
// parentRef, with Accepted and ResolvedRefs.
func RouteParents(route *v1.AIRoute, parents map[types.NamespacedName]Parent, providers map[string]*v1.ModelProvider) []gwapiv1.RouteParentStatus {
	refs := routeRefs(route, providers)
	out := make([]gwapiv1.RouteParentStatus, 0, len(route.Spec.ParentRefs))
	for _, ref := range route.Spec.ParentRefs {
		accepted := routeAccepted(route, ref, parents)
		out = append(out, gwapiv1.RouteParentStatus{
			ParentRef:      ref,
			ControllerName: v1.ControllerName,
			Conditions: []metav1.Condition{
				accepted.condition(v1.ConditionAccepted, route.Generation),
				refs.condition(v1.ConditionResolvedRefs, route.Generation),
			},
		})
	}
	return out
}

// routeAccepted decides whether one parent Gateway accepts the route.
func routeAccepted(route *v1.AIRoute, ref gwapiv1.ParentReference, parents map[types.NamespacedName]Parent) verdict {
	k, ok := ParentKey(route.Namespace, ref)
	if !ok {
		return fail(v1.ReasonUnsupportedValue, "parentRefs must name a Gateway (gateway.networking.k8s.io).")
	}
	p := parents[k]
	if p.Gateway == nil {
		return fail(v1.ReasonNoMatchingParent, fmt.Sprintf("Gateway %s does not exist.", k))
	}
	if !p.Ours {
		return fail(v1.ReasonNotAllowedByParent, fmt.Sprintf("Gateway %s is of GatewayClass %s, which Tollgate does not run.", k, p.Gateway.Spec.GatewayClassName))
	}
	matched := false
	for _, l := range p.Gateway.Spec.Listeners {
		if (ref.SectionName != nil && *ref.SectionName != l.Name) || (ref.Port != nil && *ref.Port != l.Port) {
			continue
		}
		matched = true
		if listenerAllows(l, p.Gateway.Namespace, route.Namespace) {
			return pass(v1.ReasonAccepted, fmt.Sprintf("Attached to Gateway %s.", k))
		}
	}
	if !matched {
		return fail(v1.ReasonNoMatchingParent, fmt.Sprintf("Gateway %s has no listener matching the parentRef's sectionName and port.", k))
	}
	return fail(v1.ReasonNotAllowedByParent, fmt.Sprintf("No listener of Gateway %s allows AIRoutes from namespace %s.", k, route.Namespace))
}

// aiRouteKind is how listeners name AIRoutes in allowedRoutes.kinds.
var aiRouteKind = gwapiv1.RouteGroupKind{Group: new(gwapiv1.Group(v1.GroupVersion.Group)), Kind: gwapiv1.Kind(v1.AIRouteKind)}

func listenerAllows(l gwapiv1.Listener, gatewayNamespace, routeNamespace string) bool {
	if !supportedProtocol(l.Protocol) {
		return false
	}
	from := gwapiv1.NamespacesFromSame
	if l.AllowedRoutes != nil && l.AllowedRoutes.Namespaces != nil && l.AllowedRoutes.Namespaces.From != nil {
		from = *l.AllowedRoutes.Namespaces.From
	}
	switch from {
	case gwapiv1.NamespacesFromAll:
	case gwapiv1.NamespacesFromSame:
		if gatewayNamespace != routeNamespace {
			return false
		}
	default: // Selector needs Namespace objects; not supported yet.
		return false
	}
	if l.AllowedRoutes == nil || len(l.AllowedRoutes.Kinds) == 0 {
		return true
	}
	return slices.ContainsFunc(l.AllowedRoutes.Kinds, func(k gwapiv1.RouteGroupKind) bool {
		return k.Kind == aiRouteKind.Kind && k.Group != nil && *k.Group == *aiRouteKind.Group
	})
}

func supportedProtocol(p gwapiv1.ProtocolType) bool { return p == gwapiv1.HTTPProtocolType }

// routeRefs checks that every backend names an existing provider, and that
// the models it would be asked for are ones the provider lists.
func routeRefs(route *v1.AIRoute, providers map[string]*v1.ModelProvider) verdict {
	for _, rule := range route.Spec.Rules {
		for _, b := range rule.BackendRefs {
			mp := providers[key(route.Namespace, string(b.Name))]
			if mp == nil {
				return fail(v1.ReasonProviderNotFound, fmt.Sprintf("Rule %s: ModelProvider %s does not exist.", rule.Name, b.Name))
			}
			for _, model := range backendModels(rule, b) {
				if len(mp.Spec.Models) > 0 && !slices.ContainsFunc(mp.Spec.Models, func(m v1.ProviderModel) bool { return string(m.Name) == model }) {
					return fail(v1.ReasonModelNotFound, fmt.Sprintf("Rule %s: ModelProvider %s does not list model %s.", rule.Name, b.Name, model))
				}
			}
		}
	}
	return pass(v1.ReasonResolvedRefs, "Every backend resolves.")
}

// backendModels are the models a backend will be asked for that are known
// up front: its rewrite, or the rule's exact model matches.
func backendModels(rule v1.AIRouteRule, b v1.AIBackendRef) []string {
	if b.Model != nil {
		return []string{string(*b.Model)}
	}
	var out []string
	for _, m := range rule.Matches {
		if m.Model != nil && !strings.HasSuffix(string(*m.Model), "*") {
			out = append(out, string(*m.Model))
		}
	}
	return out
}

// route translates an AIRoute attached to the Gateway. tenants are the
// tenants in the config, by "namespace/name".
func route(r *v1.AIRoute, providers map[string]*v1.ModelProvider, tenants map[string]*v1.Tenant) dataplane.Route {
	out := dataplane.Route{Name: key(r.Namespace, r.Name)}
	for _, h := range r.Spec.Hostnames {
		out.Hostnames = append(out.Hostnames, string(h))
	}
	if r.Spec.Access != nil && r.Spec.Access.Mode == v1.AccessApprovalRequired {
		out.ApprovalRequired = true
		for _, name := range r.Spec.Access.Tenants {
			t := tenants[key(r.Namespace, string(name))]
			if t != nil && slices.Contains(t.Spec.Subscriptions, v1.ObjectName(r.Name)) {
				out.Tenants = append(out.Tenants, key(t.Namespace, t.Name))
			}
		}
	}
	for _, rule := range r.Spec.Rules {
		out.Rules = append(out.Rules, routeRule(r.Namespace, rule, providers))
	}
	return out
}

func routeRule(namespace string, rule v1.AIRouteRule, providers map[string]*v1.ModelProvider) dataplane.Rule {
	out := dataplane.Rule{Name: string(rule.Name)}
	for _, m := range rule.Matches {
		dm := dataplane.Match{}
		if m.Model != nil {
			dm.Model = string(*m.Model)
		}
		if m.Path != nil {
			if m.Path.Type == v1.PathMatchExact {
				dm.PathExact = m.Path.Value
			} else {
				dm.PathPrefix = m.Path.Value
			}
		}
		for _, h := range m.Headers {
			dm.Headers = append(dm.Headers, dataplane.Header{Name: h.Name, Value: h.Value})
		}
		out.Matches = append(out.Matches, dm)
	}
	// Backends whose provider is missing are left out; AIRoute status says so.
	for _, b := range rule.BackendRefs {
		if providers[key(namespace, string(b.Name))] == nil {
			continue
		}
		db := dataplane.Backend{Provider: key(namespace, string(b.Name)), Weight: 1}
		if b.Model != nil {
			db.Model = string(*b.Model)
		}
		if b.Weight != nil {
			db.Weight = *b.Weight
		}
		if b.Priority != nil {
			db.Priority = *b.Priority
		}
		out.Backends = append(out.Backends, db)
	}
	if rule.Retries != nil {
		out.Retries = rule.Retries.Attempts
		out.Backoff = dataplane.Duration(100_000_000)
		if rule.Retries.Backoff != nil {
			out.Backoff = dataplane.Duration(rule.Retries.Backoff.Duration)
		}
	}
	if rule.Timeout != nil {
		out.Timeout = dataplane.Duration(rule.Timeout.Duration)
	}
	if p := rule.Prompt; p != nil {
		dp := &dataplane.Prompt{System: p.System, Template: p.Template}
		for _, v := range p.Variables {
			dp.Variables = append(dp.Variables, dataplane.Variable{Name: v.Name, Default: v.Default})
		}
		out.Prompt = dp
	}
	return out
}
