package translate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

// Defaults of the data plane.
const (
	DefaultMaxRequestBodyBytes = 4 << 20
	EmbeddedLedgerPath         = "/var/lib/tollgate/ledger.db"
)

// Snapshot is every input that affects one Gateway. Maps are keyed by "namespace/name".
type Snapshot struct {
	Now     time.Time
	Gateway *gwapiv1.Gateway
	Class   *gwapiv1.GatewayClass
	// ProxyConfig is the ProxyConfig the Gateway or its class points at, nil if none.
	ProxyConfig *v1.ProxyConfig
	// MissingProxyConfig names a referenced ProxyConfig that does not exist.
	MissingProxyConfig string
	Routes             []*v1.AIRoute // AIRoutes with a parentRef naming the Gateway
	Providers          map[string]*v1.ModelProvider
	Tenants            map[string]*v1.Tenant
	Policies           []*v1.PaymentPolicy
	Secrets            map[string]*corev1.Secret
	Heartbeats         []Heartbeat
}

// Heartbeat is what one live proxy reports through its Lease.
type Heartbeat struct {
	Holder  string
	Hash    string
	Expires time.Time
}

// GatewayResult is the translation of one Gateway.
type GatewayResult struct {
	// Config is nil when the Gateway is not accepted.
	Config *dataplane.Config
	// ConfigJSON is Config encoded, with its hash set.
	ConfigJSON []byte
	// Credentials is the data of the Gateway's credentials Secret.
	Credentials map[string][]byte
	Conditions  []metav1.Condition
	Listeners   []gwapiv1.ListenerStatus
	// RequeueAfter is when the next heartbeat expires and Programmed must be re-read.
	RequeueAfter time.Duration
}

// Gateway translates a snapshot into the Gateway's proxy config and status.
func Gateway(s *Snapshot) GatewayResult {
	gw := s.Gateway
	res := GatewayResult{Credentials: map[string][]byte{}}
	accepted := gatewayAccepted(s)
	routes := acceptedRoutes(s)
	if accepted.ok {
		res.Config = config(s, routes, res.Credentials)
		var err error
		if res.ConfigJSON, err = dataplane.Encode(res.Config); err == nil {
			err = res.Config.Validate()
		}
		if err != nil {
			accepted = fail(v1.ReasonInvalid, "The translated proxy config is invalid: "+err.Error())
			res.Config, res.ConfigJSON = nil, nil
		}
	}
	programmed := fail(v1.ConditionReason(gwapiv1.GatewayReasonInvalid), "The Gateway is not accepted.")
	if res.Config != nil {
		programmed, res.RequeueAfter = gatewayProgrammed(res.Config.Hash, s.Heartbeats, s.Now)
	}
	res.Conditions = []metav1.Condition{
		accepted.condition(v1.ConditionType(gwapiv1.GatewayConditionAccepted), gw.Generation),
		programmed.condition(v1.ConditionType(gwapiv1.GatewayConditionProgrammed), gw.Generation),
	}
	res.Listeners = listenerStatuses(s, routes, programmed.ok)
	return res
}

func gatewayAccepted(s *Snapshot) verdict {
	invalidParams := v1.ConditionReason(gwapiv1.GatewayReasonInvalidParameters)
	if s.MissingProxyConfig != "" {
		return fail(invalidParams, fmt.Sprintf("ProxyConfig %s does not exist.", s.MissingProxyConfig))
	}
	if pc := s.ProxyConfig; pc != nil {
		if v := ProxyConfigAccepted(pc); !v.ok {
			return fail(invalidParams, fmt.Sprintf("ProxyConfig %s: %s", pc.Name, v.message))
		}
	}
	if !slices.ContainsFunc(s.Gateway.Spec.Listeners, func(l gwapiv1.Listener) bool { return supportedProtocol(l.Protocol) }) {
		return fail(v1.ConditionReason(gwapiv1.GatewayReasonListenersNotValid), "No listener has a supported protocol (HTTP).")
	}
	return pass(v1.ConditionReason(gwapiv1.GatewayReasonAccepted), "The Gateway is accepted.")
}

// ProxyConfigAccepted refuses what CEL cannot see (objects written before
// the rule existed) and what would let tenants overspend.
func ProxyConfigAccepted(pc *v1.ProxyConfig) verdict {
	redis := pc.Spec.Ledger != nil && pc.Spec.Ledger.Type == v1.LedgerRedis
	if pc.Spec.Replicas != nil && *pc.Spec.Replicas > 1 && !redis {
		return fail(v1.ReasonInvalid, "replicas > 1 needs ledger.type Redis: an Embedded ledger per replica would let tenants overspend.")
	}
	if redis && pc.Spec.Ledger.Redis == nil {
		return fail(v1.ReasonInvalid, "ledger.type Redis needs ledger.redis.")
	}
	return pass(v1.ReasonAccepted, "The ProxyConfig is valid.")
}

// ProxyConfigConditions is the status of a ProxyConfig.
func ProxyConfigConditions(pc *v1.ProxyConfig) []metav1.Condition {
	return []metav1.Condition{ProxyConfigAccepted(pc).condition(v1.ConditionAccepted, pc.Generation)}
}

// gatewayProgrammed is true when every live proxy serves hash.
func gatewayProgrammed(hash string, beats []Heartbeat, now time.Time) (verdict, time.Duration) {
	pending := v1.ConditionReason(gwapiv1.GatewayReasonPending)
	live, current := 0, 0
	var next time.Duration
	for _, b := range beats {
		if !b.Expires.After(now) {
			continue
		}
		live++
		if b.Hash == hash {
			current++
		}
		if d := b.Expires.Sub(now); next == 0 || d < next {
			next = d
		}
	}
	switch {
	case live == 0:
		return fail(pending, fmt.Sprintf("No proxy has reported yet; waiting for one to serve config %s.", short(hash))), next
	case current < live:
		return fail(pending, fmt.Sprintf("%d of %d live proxies serve config %s.", current, live, short(hash))), next
	}
	return pass(v1.ConditionReason(gwapiv1.GatewayReasonProgrammed), fmt.Sprintf("%d live proxies serve config %s.", live, short(hash))), next
}

func short(hash string) string {
	if len(hash) > 19 {
		return hash[:19]
	}
	return hash
}

// acceptedRoutes are the snapshot's routes this Gateway accepts, by name.
func acceptedRoutes(s *Snapshot) []*v1.AIRoute {
	self := Parent{Gateway: s.Gateway, Ours: true}
	var out []*v1.AIRoute
	for _, r := range s.Routes {
		for _, ref := range r.Spec.ParentRefs {
			k, ok := ParentKey(r.Namespace, ref)
			if !ok || k.Namespace != s.Gateway.Namespace || k.Name != s.Gateway.Name {
				continue
			}
			if routeAccepted(r, ref, map[types.NamespacedName]Parent{k: self}).ok {
				out = append(out, r)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b *v1.AIRoute) int { return strings.Compare(key(a.Namespace, a.Name), key(b.Namespace, b.Name)) })
	return out
}

func config(s *Snapshot, routes []*v1.AIRoute, creds map[string][]byte) *dataplane.Config {
	gw := s.Gateway
	c := &dataplane.Config{
		SchemaVersion: dataplane.SchemaVersion,
		Gateway:       key(gw.Namespace, gw.Name),
		Limits:        dataplane.Limits{MaxRequestBodyBytes: DefaultMaxRequestBodyBytes},
		Logging:       dataplane.Logging{Level: "info"},
		Ledger:        dataplane.Ledger{Type: string(v1.LedgerEmbedded), Path: EmbeddedLedgerPath},
	}
	c.Sources = append(c.Sources, dataplane.Source{Kind: "Gateway", Name: c.Gateway, Generation: gw.Generation})
	if pc := s.ProxyConfig; pc != nil {
		c.Sources = append(c.Sources, dataplane.Source{Kind: v1.ProxyConfigKind, Name: key(pc.Namespace, pc.Name), Generation: pc.Generation})
		proxyConfig(pc, c, creds, s.Secrets)
	}
	for _, l := range gw.Spec.Listeners {
		if supportedProtocol(l.Protocol) {
			dl := dataplane.Listener{Name: string(l.Name), Port: ServingPort(l.Port), GatewayPort: int32(l.Port)}
			if l.Hostname != nil {
				dl.Hostname = string(*l.Hostname)
			}
			c.Listeners = append(c.Listeners, dl)
		}
	}

	used := map[string]bool{}
	for _, r := range routes {
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				used[key(r.Namespace, string(b.Name))] = true
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(used)) {
		if mp := s.Providers[k]; mp != nil && providerAccepted(mp).ok {
			c.Providers = append(c.Providers, provider(mp, s.Secrets[key(mp.Namespace, authSecret(mp))], creds))
			c.Sources = append(c.Sources, dataplane.Source{Kind: v1.ModelProviderKind, Name: k, Generation: mp.Generation})
		}
	}
	usable := map[string]*v1.ModelProvider{}
	for _, p := range c.Providers {
		usable[p.Name] = s.Providers[p.Name]
	}
	for _, r := range routes {
		c.Routes = append(c.Routes, route(r, usable, s.Tenants))
		c.Sources = append(c.Sources, dataplane.Source{Kind: v1.AIRouteKind, Name: key(r.Namespace, r.Name), Generation: r.Generation})
	}
	for _, k := range slices.Sorted(maps.Keys(s.Tenants)) {
		t := s.Tenants[k]
		c.Tenants = append(c.Tenants, tenant(t, s.Secrets))
		c.Sources = append(c.Sources, dataplane.Source{Kind: v1.TenantKind, Name: k, Generation: t.Generation})
	}
	c.Policies = policies(s, routes, creds, func(p *v1.PaymentPolicy) {
		c.Sources = append(c.Sources, dataplane.Source{Kind: v1.PaymentPolicyKind, Name: key(p.Namespace, p.Name), Generation: p.Generation})
	})
	return c
}

func authSecret(mp *v1.ModelProvider) string {
	if mp.Spec.Auth == nil {
		return ""
	}
	return string(mp.Spec.Auth.SecretRef.Name)
}

// policies translates the accepted policies that reach this Gateway, with
// their targets on it, and calls used for each policy it keeps.
func policies(s *Snapshot, routes []*v1.AIRoute, creds map[string][]byte, used func(*v1.PaymentPolicy)) []dataplane.Policy {
	// Policies only reach tenants of their own namespace.
	byNamespace := map[string]map[string]*v1.Tenant{}
	for k, t := range s.Tenants {
		if byNamespace[t.Namespace] == nil {
			byNamespace[t.Namespace] = map[string]*v1.Tenant{}
		}
		byNamespace[t.Namespace][k] = t
	}
	in := PolicyInputs{Policies: s.Policies, Secrets: s.Secrets,
		Routes: map[string]*v1.AIRoute{}, Gateways: map[string]*gwapiv1.Gateway{key(s.Gateway.Namespace, s.Gateway.Name): s.Gateway}}
	for _, r := range routes {
		in.Routes[key(r.Namespace, r.Name)] = r
	}
	var out []dataplane.Policy
	sorted := slices.SortedFunc(slices.Values(s.Policies), func(a, b *v1.PaymentPolicy) int {
		return strings.Compare(key(a.Namespace, a.Name), key(b.Namespace, b.Name))
	})
	for _, p := range sorted {
		in.Tenants = byNamespace[p.Namespace]
		if !policyAccepted(p, in).ok {
			continue
		}
		t := dataplane.PolicyTargets{}
		t.Gateway = p.Namespace == s.Gateway.Namespace && targets(p, gwapiv1.GroupName, "Gateway", s.Gateway.Name)
		for _, r := range routes {
			if r.Namespace == p.Namespace && targets(p, v1.GroupVersion.Group, v1.AIRouteKind, r.Name) {
				t.Routes = append(t.Routes, key(r.Namespace, r.Name))
			}
		}
		for _, tn := range PolicyTenants(p, in.Tenants) {
			t.Tenants = append(t.Tenants, key(tn.Namespace, tn.Name))
		}
		if !t.Gateway && len(t.Routes) == 0 && len(t.Tenants) == 0 {
			continue
		}
		dp, err := policy(p, t)
		if err != nil {
			continue // policyAccepted already refused it
		}
		if x := dp.Refusal.X402; x != nil && x.FacilitatorTokenKey != "" {
			ref := p.Spec.PaymentRequired.X402.Facilitator.SecretRef
			if v := secretValue(s.Secrets[key(p.Namespace, string(ref.Name))], ref.Key); v != nil {
				creds[x.FacilitatorTokenKey] = v
			}
		}
		out = append(out, dp)
		used(p)
	}
	return out
}

// ServingPort is the port the proxy listens on for a listener port: ports
// below 1024 move up by 8000 so that the proxy runs without privileges.
func ServingPort(port gwapiv1.PortNumber) int32 {
	if port < 1024 {
		return int32(port) + 8000
	}
	return int32(port)
}

func proxyConfig(pc *v1.ProxyConfig, c *dataplane.Config, creds map[string][]byte, secrets map[string]*corev1.Secret) {
	if pc.Spec.MaxRequestBodyBytes != nil {
		c.Limits.MaxRequestBodyBytes = *pc.Spec.MaxRequestBodyBytes
	}
	if l := pc.Spec.Logging; l != nil {
		c.Logging = dataplane.Logging{Level: cmp.Or(string(l.Level), "info"), LogPrompts: l.LogPrompts}
	}
	if l := pc.Spec.Ledger; l != nil && l.Type == v1.LedgerRedis && l.Redis != nil {
		c.Ledger = dataplane.Ledger{Type: string(v1.LedgerRedis), Redis: &dataplane.RedisLedger{Address: l.Redis.Address, TLS: l.Redis.TLS}}
		if ref := l.Redis.SecretRef; ref != nil {
			if v := secretValue(secrets[key(pc.Namespace, string(ref.Name))], ref.Key); v != nil {
				c.Ledger.Redis.PasswordKey = "ledger.redis.password"
				creds[c.Ledger.Redis.PasswordKey] = v
			}
		}
	}
}

func listenerStatuses(s *Snapshot, routes []*v1.AIRoute, programmed bool) []gwapiv1.ListenerStatus {
	var out []gwapiv1.ListenerStatus
	for _, l := range s.Gateway.Spec.Listeners {
		g := s.Gateway.Generation
		ls := gwapiv1.ListenerStatus{Name: l.Name, SupportedKinds: []gwapiv1.RouteGroupKind{aiRouteKind}}
		if !supportedProtocol(l.Protocol) {
			ls.SupportedKinds = []gwapiv1.RouteGroupKind{}
			ls.Conditions = []metav1.Condition{
				condition(gwapiv1.ListenerConditionAccepted, false, gwapiv1.ListenerReasonUnsupportedProtocol, fmt.Sprintf("Protocol %s is not supported; use HTTP.", l.Protocol), g),
				condition(gwapiv1.ListenerConditionProgrammed, false, gwapiv1.ListenerReasonInvalid, "The listener is not accepted.", g),
				condition(gwapiv1.ListenerConditionResolvedRefs, true, gwapiv1.ListenerReasonResolvedRefs, "No references to resolve.", g),
			}
			out = append(out, ls)
			continue
		}
		for _, r := range routes {
			if slices.ContainsFunc(r.Spec.ParentRefs, func(ref gwapiv1.ParentReference) bool {
				k, ok := ParentKey(r.Namespace, ref)
				return ok && k.Name == s.Gateway.Name && k.Namespace == s.Gateway.Namespace &&
					(ref.SectionName == nil || *ref.SectionName == l.Name) && listenerAllows(l, s.Gateway.Namespace, r.Namespace)
			}) {
				ls.AttachedRoutes++
			}
		}
		progReason, progMsg := gwapiv1.ListenerReasonProgrammed, "The listener is served."
		if !programmed {
			progReason, progMsg = gwapiv1.ListenerReasonPending, "Waiting for proxies to serve the current config."
		}
		ls.Conditions = []metav1.Condition{
			condition(gwapiv1.ListenerConditionAccepted, true, gwapiv1.ListenerReasonAccepted, "The listener is accepted.", g),
			condition(gwapiv1.ListenerConditionProgrammed, programmed, progReason, progMsg, g),
			condition(gwapiv1.ListenerConditionResolvedRefs, true, gwapiv1.ListenerReasonResolvedRefs, "No references to resolve.", g),
		}
		out = append(out, ls)
	}
	return out
}
