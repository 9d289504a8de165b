package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/timezone"
)

// PolicyInputs is what a PaymentPolicy's status depends on, all in its namespace.
type PolicyInputs struct {
	Tenants  map[string]*v1.Tenant       // by "namespace/name"
	Routes   map[string]*v1.AIRoute      // by "namespace/name"
	Gateways map[string]*gwapiv1.Gateway // by "namespace/name", only Tollgate's
	Secrets  map[string]*corev1.Secret   // by "namespace/name"
	Policies []*v1.PaymentPolicy         // every policy of the namespace, for conflicts
}

// PolicyTenants are the Tenants a policy applies to directly: its Tenant
// targetRefs and the tenants its selector matches.
func PolicyTenants(p *v1.PaymentPolicy, tenants map[string]*v1.Tenant) []*v1.Tenant {
	var sel labels.Selector
	if p.Spec.TargetSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(p.Spec.TargetSelector)
		if err == nil {
			sel = s
		}
	}
	var out []*v1.Tenant
	for _, t := range tenants {
		if t.Namespace != p.Namespace {
			continue
		}
		if (sel != nil && sel.Matches(labels.Set(t.Labels))) || targets(p, v1.GroupVersion.Group, v1.TenantKind, t.Name) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *v1.Tenant) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func targets(p *v1.PaymentPolicy, group, kind, name string) bool {
	return slices.ContainsFunc(p.Spec.TargetRefs, func(r gwapiv1.LocalPolicyTargetReferenceWithSectionName) bool {
		return string(r.Group) == group && string(r.Kind) == kind && string(r.Name) == name
	})
}

// PolicyConditions computes Accepted and ResolvedRefs of a PaymentPolicy.
// Enforced depends on live gateways and is computed by PolicyEnforced.
func PolicyConditions(p *v1.PaymentPolicy, in PolicyInputs) []metav1.Condition {
	return []metav1.Condition{
		policyAccepted(p, in).condition(v1.ConditionAccepted, p.Generation),
		policyRefs(p, in).condition(v1.ConditionResolvedRefs, p.Generation),
	}
}

func policyAccepted(p *v1.PaymentPolicy, in PolicyInputs) verdict {
	if _, err := policy(p, dataplane.PolicyTargets{}); err != nil {
		return fail(v1.ReasonInvalid, err.Error())
	}
	var missing []string
	for _, r := range p.Spec.TargetRefs {
		if !policyTargetExists(p.Namespace, r, in) {
			missing = append(missing, fmt.Sprintf("%s %s", r.Kind, r.Name))
		}
	}
	if len(p.Spec.TargetRefs) > 0 && len(missing) == len(p.Spec.TargetRefs) && p.Spec.TargetSelector == nil {
		return fail(v1.ReasonTargetNotFound, fmt.Sprintf("No target exists: %s.", strings.Join(missing, ", ")))
	}
	if other := prepaidConflict(p, in); other != "" {
		return fail(v1.ReasonConflicted, other)
	}
	msg := "The policy is valid."
	if len(missing) > 0 {
		msg = fmt.Sprintf("The policy is valid; these targets do not exist yet: %s.", strings.Join(missing, ", "))
	}
	return pass(v1.ReasonAccepted, msg)
}

func policyTargetExists(ns string, r gwapiv1.LocalPolicyTargetReferenceWithSectionName, in PolicyInputs) bool {
	k := key(ns, string(r.Name))
	switch string(r.Kind) {
	case v1.TenantKind:
		return in.Tenants[k] != nil
	case v1.AIRouteKind:
		return in.Routes[k] != nil
	default:
		return in.Gateways[k] != nil
	}
}

// prepaidConflict finds an older prepaid policy in another currency that
// draws on the same tenant's credits: a balance has one currency, so the
// newer policy is the one refused.
func prepaidConflict(p *v1.PaymentPolicy, in PolicyInputs) string {
	if !p.Spec.Prepaid {
		return ""
	}
	mine := PolicyTenants(p, in.Tenants)
	for _, o := range in.Policies {
		if o.UID == p.UID || o.Name == p.Name || !o.Spec.Prepaid || currency(o) == currency(p) || !older(o, p) {
			continue
		}
		for _, t := range PolicyTenants(o, in.Tenants) {
			if slices.Contains(mine, t) {
				return fmt.Sprintf("Tenant %s already draws its prepaid credits in %s under PaymentPolicy %s; a balance has one currency.", t.Name, currency(o), o.Name)
			}
		}
	}
	return ""
}

func currency(p *v1.PaymentPolicy) string { return cmp.Or(string(p.Spec.Currency), "USD") }

func older(a, b *v1.PaymentPolicy) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

func policyRefs(p *v1.PaymentPolicy, in PolicyInputs) verdict {
	if pr := p.Spec.PaymentRequired; pr != nil && pr.X402 != nil && pr.X402.Facilitator.SecretRef != nil {
		ref := *pr.X402.Facilitator.SecretRef
		return secretKeyVerdict(in.Secrets[key(p.Namespace, string(ref.Name))], ref, "facilitator token")
	}
	return pass(v1.ReasonResolvedRefs, "Every referenced Secret resolves.")
}

// PolicyEnforced is true once an accepted policy is served by a programmed Gateway.
func PolicyEnforced(p *v1.PaymentPolicy, accepted bool, programmed []string) metav1.Condition {
	switch {
	case !accepted:
		return fail(v1.ReasonNotAccepted, "The policy is not accepted.").condition(v1.ConditionEnforced, p.Generation)
	case len(programmed) == 0:
		return fail(v1.ReasonPending, "No programmed Gateway serves this policy yet.").condition(v1.ConditionEnforced, p.Generation)
	}
	return pass(v1.ReasonEnforced, fmt.Sprintf("Enforced by Gateway %s.", strings.Join(programmed, ", "))).condition(v1.ConditionEnforced, p.Generation)
}

// policy translates a PaymentPolicy with the targets it has on one Gateway.
func policy(p *v1.PaymentPolicy, t dataplane.PolicyTargets) (dataplane.Policy, error) {
	s := p.Spec
	out := dataplane.Policy{
		Name:        key(p.Namespace, p.Name),
		Mode:        cmp.Or(string(s.Mode), string(v1.PolicyEnforce)),
		Currency:    currency(p),
		Admission:   cmp.Or(string(s.Admission), string(v1.AdmissionReserve)),
		FailureMode: cmp.Or(string(s.FailureMode), string(v1.FailClosed)),
		Prepaid:     s.Prepaid,
		SoftLimits:  slices.Sorted(slices.Values(s.SoftLimits)),
		Targets:     t,
	}
	var err error
	parse := func(field string, v v1.Money) money.Micros {
		if v == "" || err != nil {
			return 0
		}
		m, e := money.Parse(string(v))
		if e != nil {
			err = fmt.Errorf("%s: %w", field, e)
		}
		return m
	}
	if b := s.Budget; b != nil {
		db := &dataplane.Budget{Limit: parse("budget.limit", b.Limit), Calendar: string(b.Window.Calendar)}
		if b.Window.Calendar != "" {
			db.Timezone = cmp.Or(b.Window.Timezone, "UTC")
			if _, e := timezone.Load(db.Timezone); e != nil {
				return out, fmt.Errorf("budget.window.timezone %q is not a known time zone", db.Timezone)
			}
		}
		if b.Window.Rolling != nil {
			db.Rolling = dataplane.Duration(b.Window.Rolling.Duration)
		}
		out.Budget = db
	}
	if s.PayPerRequest != nil {
		out.PayPerRequest = parse("payPerRequest.price", s.PayPerRequest.Price)
	}
	if pr := s.Pricing; pr != nil {
		out.Pricing.MarkupPercent = parse("pricing.markupPercent", pr.MarkupPercent)
		for _, m := range pr.Models {
			out.Pricing.Models = append(out.Pricing.Models, dataplane.ModelPrice{Name: string(m.Name), Price: dataplane.Price{
				InputPerMillion:       parse("pricing.models.inputPerMillion", m.InputPerMillion),
				CachedInputPerMillion: parse("pricing.models.cachedInputPerMillion", cmp.Or(m.CachedInputPerMillion, m.InputPerMillion)),
				OutputPerMillion:      parse("pricing.models.outputPerMillion", m.OutputPerMillion),
				PerRequest:            parse("pricing.models.perRequest", m.PerRequest),
			}})
		}
	}
	if pr := s.PaymentRequired; pr != nil {
		out.Refusal = dataplane.Refusal{Message: pr.Message, Code: pr.Code, TopUpURL: pr.TopUpURL}
		for _, h := range pr.Headers {
			out.Refusal.Headers = append(out.Refusal.Headers, dataplane.Header{Name: h.Name, Value: h.Value})
		}
		if x := pr.X402; x != nil {
			dx := &dataplane.X402{FacilitatorURL: x.Facilitator.URL}
			if x.Facilitator.SecretRef != nil {
				dx.FacilitatorTokenKey = FacilitatorKey(p.Namespace, p.Name)
			}
			for _, a := range x.Accepts {
				o := dataplane.X402Option{Scheme: cmp.Or(a.Scheme, "exact"), Network: a.Network, Asset: a.Asset, Decimals: 6,
					PayTo: a.PayTo, MaxTimeoutSeconds: cmp.Or(a.MaxTimeoutSeconds, 60)}
				if a.Decimals != nil {
					o.Decimals = *a.Decimals
				}
				if a.Extra != nil {
					o.Extra = a.Extra.Raw
				}
				dx.Accepts = append(dx.Accepts, o)
			}
			out.Refusal.X402 = dx
		}
	}
	out.Refusal.Code = cmp.Or(out.Refusal.Code, "payment_required")
	return out, err
}

// FacilitatorKey is the key of a policy's facilitator token in the Gateway's credentials Secret.
func FacilitatorKey(namespace, name string) string { return "facilitator." + namespace + "." + name }
