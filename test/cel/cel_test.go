package cel

import (
	"fmt"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
)

// celCase mutates a valid object and lists the messages the API server must answer with.
type celCase[T client.Object] struct {
	desc       string
	mutate     func(T)
	wantErrors []string
}

func runCases[T client.Object](t *testing.T, valid func() T, cases []celCase[T]) {
	t.Helper()
	ns := namespace(t)
	base := valid()
	base.SetNamespace(ns)
	base.SetName("valid")
	if err := create(t, base); err != nil {
		t.Fatalf("the valid base object is refused: %v", err)
	}
	for i, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			obj := valid()
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("case-%d", i))
			tc.mutate(obj)
			err := create(t, obj)
			if len(tc.wantErrors) == 0 {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want refused with %q, but it was accepted", tc.wantErrors)
			}
			for _, want := range tc.wantErrors {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err.Error(), want)
				}
			}
		})
	}
}

func validProvider() *v1.ModelProvider {
	return &v1.ModelProvider{Spec: v1.ModelProviderSpec{
		Type: v1.ProviderOpenAI,
		Auth: &v1.ProviderAuth{SecretRef: v1.SecretKeyReference{Name: "openai", Key: "api-key"}},
		Models: []v1.ProviderModel{{Name: "gpt-4o-mini", Pricing: &v1.ModelPricing{
			InputPerMillion: "0.15", OutputPerMillion: "0.60",
		}}},
	}}
}

func TestModelProviderValidation(t *testing.T) {
	runCases(t, validProvider, []celCase[*v1.ModelProvider]{
		{desc: "OpenAICompatible without baseURL", mutate: func(p *v1.ModelProvider) { p.Spec.Type = v1.ProviderOpenAICompatible },
			wantErrors: []string{"baseURL is required for types AzureOpenAI and OpenAICompatible"}},
		{desc: "hosted type without auth", mutate: func(p *v1.ModelProvider) { p.Spec.Type = v1.ProviderAnthropic; p.Spec.Auth = nil },
			wantErrors: []string{"auth is required for hosted provider types (OpenAI, Anthropic, Gemini, Mistral, AzureOpenAI)"}},
		{desc: "Ollama without auth is fine", mutate: func(p *v1.ModelProvider) { p.Spec.Type = v1.ProviderOllama; p.Spec.Auth = nil }},
		{desc: "azure settings on another type", mutate: func(p *v1.ModelProvider) { p.Spec.Azure = &v1.AzureOpenAISettings{APIVersion: "2024-10-21"} },
			wantErrors: []string{"azure may only be set when type is AzureOpenAI"}},
		{desc: "relative baseURL", mutate: func(p *v1.ModelProvider) { p.Spec.BaseURL = "api.openai.com/v1" },
			wantErrors: []string{"baseURL must be an absolute http or https URL"}},
		{desc: "ftp baseURL", mutate: func(p *v1.ModelProvider) { p.Spec.BaseURL = "ftp://example.com/v1" },
			wantErrors: []string{"baseURL must be an absolute http or https URL"}},
		{desc: "price with seven decimals", mutate: func(p *v1.ModelProvider) { p.Spec.Models[0].Pricing.InputPerMillion = "0.0000001" },
			wantErrors: []string{"spec.models[0].pricing.inputPerMillion: Invalid value: \"0.0000001\": must be a decimal amount such as 12.50, with at most 6 decimals"}},
		{desc: "negative price", mutate: func(p *v1.ModelProvider) { p.Spec.Models[0].Pricing.OutputPerMillion = "-1" },
			wantErrors: []string{"must be a decimal amount such as 12.50, with at most 6 decimals"}},
		{desc: "duplicate model names", mutate: func(p *v1.ModelProvider) { p.Spec.Models = append(p.Spec.Models, p.Spec.Models[0]) },
			wantErrors: []string{`spec.models[1]: Duplicate value: {"name":"gpt-4o-mini"}`}},
		{desc: "unknown type", mutate: func(p *v1.ModelProvider) { p.Spec.Type = "Cohere" },
			wantErrors: []string{`spec.type: Unsupported value: "Cohere"`}},
		{desc: "model name with a space", mutate: func(p *v1.ModelProvider) { p.Spec.Models[0].Name = "gpt 4" },
			wantErrors: []string{"spec.models[0].name: Invalid value"}},
	})
}

func validRoute() *v1.AIRoute {
	return &v1.AIRoute{Spec: v1.AIRouteSpec{
		ParentRefs: []gwapiv1.ParentReference{{Name: "ai-gateway"}},
		Rules: []v1.AIRouteRule{{
			Name:        "gpt",
			Matches:     []v1.AIRouteMatch{{Model: ptr.To(v1.ModelPattern("gpt-*"))}},
			BackendRefs: []v1.AIBackendRef{{Name: "openai"}},
		}},
	}}
}

func promptRule() v1.AIRouteRule {
	return v1.AIRouteRule{
		Name:        "summarize",
		Matches:     []v1.AIRouteMatch{{Path: &v1.PathMatch{Type: v1.PathMatchExact, Value: "/v1/prompts/summarize"}}},
		BackendRefs: []v1.AIBackendRef{{Name: "openai", Model: ptr.To(v1.ModelName("gpt-4o-mini"))}},
		Prompt:      &v1.PromptTemplate{Template: "Summarise {{text}}", Variables: []v1.PromptVariable{{Name: "text"}}},
	}
}

func TestAIRouteValidation(t *testing.T) {
	runCases(t, validRoute, []celCase[*v1.AIRoute]{
		{desc: "prompt rule with a path is fine", mutate: func(r *v1.AIRoute) { r.Spec.Rules = append(r.Spec.Rules, promptRule()) }},
		{desc: "prompt without a path match", mutate: func(r *v1.AIRoute) {
			p := promptRule()
			p.Matches = []v1.AIRouteMatch{{Model: ptr.To(v1.ModelPattern("gpt-4o-mini"))}}
			r.Spec.Rules = append(r.Spec.Rules, p)
		}, wantErrors: []string{"a rule with a prompt needs a match with a path: the prompt is served as its own endpoint"}},
		{desc: "prompt without any match", mutate: func(r *v1.AIRoute) {
			p := promptRule()
			p.Matches = nil
			r.Spec.Rules = append(r.Spec.Rules, p)
		}, wantErrors: []string{"a rule with a prompt needs a match with a path"}},
		{desc: "repeated backend", mutate: func(r *v1.AIRoute) {
			r.Spec.Rules[0].BackendRefs = append(r.Spec.Rules[0].BackendRefs, v1.AIBackendRef{Name: "openai"})
		}, wantErrors: []string{"backendRefs must not repeat the same provider and model"}},
		{desc: "same provider with another model is fine", mutate: func(r *v1.AIRoute) {
			r.Spec.Rules[0].BackendRefs = append(r.Spec.Rules[0].BackendRefs, v1.AIBackendRef{Name: "openai", Model: ptr.To(v1.ModelName("gpt-4o")), Priority: ptr.To[int32](1)})
		}},
		{desc: "empty match", mutate: func(r *v1.AIRoute) { r.Spec.Rules[0].Matches = []v1.AIRouteMatch{{}} },
			wantErrors: []string{"a match needs at least one of model, path or headers"}},
		{desc: "path without a slash", mutate: func(r *v1.AIRoute) {
			r.Spec.Rules[0].Matches = []v1.AIRouteMatch{{Path: &v1.PathMatch{Value: "v1/chat"}}}
		}, wantErrors: []string{"path must start with '/'"}},
		{desc: "model pattern with an inner star", mutate: func(r *v1.AIRoute) {
			r.Spec.Rules[0].Matches = []v1.AIRouteMatch{{Model: ptr.To(v1.ModelPattern("gpt-*-mini"))}}
		}, wantErrors: []string{"must be a model name, or a prefix ending in a single '*'"}},
		{desc: "tenants listed on an open route", mutate: func(r *v1.AIRoute) {
			r.Spec.Access = &v1.RouteAccess{Mode: v1.AccessOpen, Tenants: []v1.ObjectName{"acme"}}
		}, wantErrors: []string{"tenants may only be listed when mode is ApprovalRequired"}},
		{desc: "approval list is fine", mutate: func(r *v1.AIRoute) {
			r.Spec.Access = &v1.RouteAccess{Mode: v1.AccessApprovalRequired, Tenants: []v1.ObjectName{"acme"}}
		}},
		{desc: "weight out of range", mutate: func(r *v1.AIRoute) { r.Spec.Rules[0].BackendRefs[0].Weight = ptr.To[int32](1_000_001) },
			wantErrors: []string{"spec.rules[0].backendRefs[0].weight: Invalid value: 1000001: spec.rules[0].backendRefs[0].weight in body should be less than or equal to 1000000"}},
		{desc: "priority out of range", mutate: func(r *v1.AIRoute) { r.Spec.Rules[0].BackendRefs[0].Priority = ptr.To[int32](10) },
			wantErrors: []string{"spec.rules[0].backendRefs[0].priority in body should be less than or equal to 9"}},
		{desc: "negative weight", mutate: func(r *v1.AIRoute) { r.Spec.Rules[0].BackendRefs[0].Weight = ptr.To[int32](-1) },
			wantErrors: []string{"weight in body should be greater than or equal to 0"}},
		{desc: "duplicate rule names", mutate: func(r *v1.AIRoute) { r.Spec.Rules = append(r.Spec.Rules, r.Spec.Rules[0]) },
			wantErrors: []string{`spec.rules[1]: Duplicate value: {"name":"gpt"}`}},
		{desc: "no rules", mutate: func(r *v1.AIRoute) { r.Spec.Rules = nil },
			wantErrors: []string{"spec.rules: Required value"}},
		{desc: "too many retries", mutate: func(r *v1.AIRoute) { r.Spec.Rules[0].Retries = &v1.RetryPolicy{Attempts: 6} },
			wantErrors: []string{"attempts in body should be less than or equal to 5"}},
	})
}

func validTenant() *v1.Tenant {
	return &v1.Tenant{Spec: v1.TenantSpec{
		APIKeys: []v1.TenantAPIKey{{Name: "default", SecretRef: v1.SecretKeyReference{Name: "acme-key", Key: "api-key"}}},
		Credits: []v1.CreditGrant{{ID: "welcome", Amount: "10.00"}},
	}}
}

func TestTenantValidation(t *testing.T) {
	runCases(t, validTenant, []celCase[*v1.Tenant]{
		{desc: "credit with seven decimals", mutate: func(tn *v1.Tenant) { tn.Spec.Credits[0].Amount = "1.2345678" },
			wantErrors: []string{"spec.credits[0].amount: Invalid value: \"1.2345678\": must be a decimal amount such as 12.50, with at most 6 decimals"}},
		{desc: "credit written as a float exponent", mutate: func(tn *v1.Tenant) { tn.Spec.Credits[0].Amount = "1e3" },
			wantErrors: []string{"must be a decimal amount such as 12.50, with at most 6 decimals"}},
		{desc: "duplicate credit ids", mutate: func(tn *v1.Tenant) {
			tn.Spec.Credits = append(tn.Spec.Credits, v1.CreditGrant{ID: "welcome", Amount: "5"})
		}, wantErrors: []string{`spec.credits[1]: Duplicate value: {"id":"welcome"}`}},
		{desc: "duplicate key names", mutate: func(tn *v1.Tenant) { tn.Spec.APIKeys = append(tn.Spec.APIKeys, tn.Spec.APIKeys[0]) },
			wantErrors: []string{`spec.apiKeys[1]: Duplicate value: {"name":"default"}`}},
		{desc: "duplicate subscriptions", mutate: func(tn *v1.Tenant) { tn.Spec.Subscriptions = []v1.ObjectName{"chat", "chat"} },
			wantErrors: []string{`spec.subscriptions[1]: Duplicate value: "chat"`}},
		{desc: "allowed model with an inner star", mutate: func(tn *v1.Tenant) { tn.Spec.AllowedModels = []v1.ModelPattern{"*gpt"} },
			wantErrors: []string{"must be a model name, or a prefix ending in a single '*'"}},
		{desc: "expiring credit is fine", mutate: func(tn *v1.Tenant) {
			tn.Spec.Credits[0].ExpiresAt = &metav1.Time{Time: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
		}},
	})
}

func validPolicy() *v1.PaymentPolicy {
	return &v1.PaymentPolicy{Spec: v1.PaymentPolicySpec{
		TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
			Group: "tollgate.dev", Kind: "Tenant", Name: "acme",
		}}},
		Prepaid: true,
	}}
}

func x402() *v1.X402 {
	return &v1.X402{
		Accepts:     []v1.X402PaymentOption{{Network: "eip155:84532", Asset: "0xabc", PayTo: "0xdef"}},
		Facilitator: v1.X402Facilitator{URL: "https://facilitator.example.com"},
	}
}

func TestPaymentPolicyValidation(t *testing.T) {
	tenantRef := func(kind, group, name string) gwapiv1.LocalPolicyTargetReferenceWithSectionName {
		return gwapiv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
			Group: gwapiv1.Group(group), Kind: gwapiv1.Kind(kind), Name: gwapiv1.ObjectName(name)}}
	}
	runCases(t, validPolicy, []celCase[*v1.PaymentPolicy]{
		{desc: "no target", mutate: func(p *v1.PaymentPolicy) { p.Spec.TargetRefs = nil },
			wantErrors: []string{"a PaymentPolicy needs targetRefs or a targetSelector"}},
		{desc: "selector alone is fine", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.TargetRefs = nil
			p.Spec.TargetSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"plan": "pro"}}
		}},
		{desc: "nothing required", mutate: func(p *v1.PaymentPolicy) { p.Spec.Prepaid = false },
			wantErrors: []string{"a PaymentPolicy must require something: prepaid, budget or payPerRequest"}},
		{desc: "target of another kind", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.TargetRefs = append(p.Spec.TargetRefs, tenantRef("HTTPRoute", "gateway.networking.k8s.io", "web"))
		}, wantErrors: []string{"targetRefs may only name Tenant or AIRoute (group tollgate.dev) or Gateway (group gateway.networking.k8s.io)"}},
		{desc: "Tenant in the wrong group", mutate: func(p *v1.PaymentPolicy) { p.Spec.TargetRefs[0].Group = "example.com" },
			wantErrors: []string{"targetRefs may only name Tenant or AIRoute"}},
		{desc: "Gateway and AIRoute targets are fine", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.TargetRefs = append(p.Spec.TargetRefs, tenantRef("Gateway", "gateway.networking.k8s.io", "gw"), tenantRef("AIRoute", "tollgate.dev", "chat"))
		}},
		{desc: "repeated target", mutate: func(p *v1.PaymentPolicy) { p.Spec.TargetRefs = append(p.Spec.TargetRefs, p.Spec.TargetRefs[0]) },
			wantErrors: []string{"targetRefs must be unique"}},
		{desc: "x402 with nothing payable", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Prepaid = false
			p.Spec.Budget = &v1.Budget{Limit: "10", Window: v1.BudgetWindow{Calendar: v1.CalendarMonth}}
			p.Spec.PaymentRequired = &v1.PaymentRequired{X402: x402()}
		}, wantErrors: []string{"paymentRequired.x402 needs something payable: payPerRequest, or prepaid so that a payment tops up the balance"}},
		{desc: "payPerRequest without x402", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.PayPerRequest = &v1.PayPerRequest{Price: "0.01"}
		}, wantErrors: []string{"payPerRequest needs paymentRequired.x402: it says how each request is paid"}},
		{desc: "payPerRequest with x402 is fine", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Prepaid = false
			p.Spec.PayPerRequest = &v1.PayPerRequest{Price: "0.01"}
			p.Spec.PaymentRequired = &v1.PaymentRequired{X402: x402()}
		}},
		{desc: "soft limits without a budget or balance", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Prepaid = false
			p.Spec.PayPerRequest = &v1.PayPerRequest{Price: "0.01"}
			p.Spec.PaymentRequired = &v1.PaymentRequired{X402: x402()}
			p.Spec.SoftLimits = []int32{80}
		}, wantErrors: []string{"softLimits need a budget or a prepaid balance to be a percentage of"}},
		{desc: "soft limit over 100", mutate: func(p *v1.PaymentPolicy) { p.Spec.SoftLimits = []int32{101} },
			wantErrors: []string{"spec.softLimits[0]: Invalid value: 101: spec.softLimits[0] in body should be less than or equal to 100"}},
		{desc: "window with both kinds", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Budget = &v1.Budget{Limit: "10", Window: v1.BudgetWindow{Calendar: v1.CalendarDay, Rolling: &metav1.Duration{Duration: 24 * time.Hour}}}
		}, wantErrors: []string{"window needs exactly one of calendar or rolling"}},
		{desc: "window with neither kind", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Budget = &v1.Budget{Limit: "10"}
		}, wantErrors: []string{"window needs exactly one of calendar or rolling"}},
		{desc: "timezone on a rolling window", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Budget = &v1.Budget{Limit: "10", Window: v1.BudgetWindow{Timezone: "Europe/Paris", Rolling: &metav1.Duration{Duration: time.Hour}}}
		}, wantErrors: []string{"timezone applies only to calendar windows"}},
		{desc: "rolling window too short", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Budget = &v1.Budget{Limit: "10", Window: v1.BudgetWindow{Rolling: &metav1.Duration{Duration: time.Second}}}
		}, wantErrors: []string{"rolling must be between 1m and 92 days"}},
		{desc: "calendar month in a time zone is fine", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Budget = &v1.Budget{Limit: "10", Window: v1.BudgetWindow{Calendar: v1.CalendarMonth, Timezone: "America/New_York"}}
		}},
		{desc: "budget limit with too many decimals", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Budget = &v1.Budget{Limit: "10.0000001", Window: v1.BudgetWindow{Calendar: v1.CalendarDay}}
		}, wantErrors: []string{"spec.budget.limit: Invalid value: \"10.0000001\": must be a decimal amount such as 12.50, with at most 6 decimals"}},
		{desc: "network not in CAIP-2 form", mutate: func(p *v1.PaymentPolicy) {
			x := x402()
			x.Accepts[0].Network = "base-sepolia"
			p.Spec.PaymentRequired = &v1.PaymentRequired{X402: x}
		}, wantErrors: []string{"network must be a CAIP-2 chain id such as eip155:8453"}},
		{desc: "relative facilitator url", mutate: func(p *v1.PaymentPolicy) {
			x := x402()
			x.Facilitator.URL = "facilitator"
			p.Spec.PaymentRequired = &v1.PaymentRequired{X402: x}
		}, wantErrors: []string{"facilitator url must be an absolute http or https URL"}},
		{desc: "zero payment timeout", mutate: func(p *v1.PaymentPolicy) {
			x := x402()
			x.Accepts[0].MaxTimeoutSeconds = -1
			p.Spec.PaymentRequired = &v1.PaymentRequired{X402: x}
		}, wantErrors: []string{"maxTimeoutSeconds in body should be greater than or equal to 1"}},
		{desc: "x402 extra object is kept", mutate: func(p *v1.PaymentPolicy) {
			x := x402()
			x.Accepts[0].Extra = &apiextensionsv1.JSON{Raw: []byte(`{"name":"USDC","version":"2"}`)}
			p.Spec.PaymentRequired = &v1.PaymentRequired{X402: x}
		}},
		{desc: "relative top-up URL", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.PaymentRequired = &v1.PaymentRequired{TopUpURL: "/billing"}
		}, wantErrors: []string{"topUpURL must be an absolute http or https URL"}},
		{desc: "error code with capitals", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.PaymentRequired = &v1.PaymentRequired{Code: "Credits Exhausted"}
		}, wantErrors: []string{"spec.paymentRequired.code: Invalid value"}},
		{desc: "markup that is not a decimal", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Pricing = &v1.PolicyPricing{MarkupPercent: "20%"}
		}, wantErrors: []string{"spec.pricing.markupPercent: Invalid value: \"20%\": must be a decimal amount such as 12.50, with at most 6 decimals"}},
		{desc: "model price with no price", mutate: func(p *v1.PaymentPolicy) {
			p.Spec.Pricing = &v1.PolicyPricing{Models: []v1.PolicyModelPrice{{Name: "gpt-4o"}}}
		}, wantErrors: []string{"a model price needs inputPerMillion, outputPerMillion or perRequest"}},
		{desc: "unknown mode", mutate: func(p *v1.PaymentPolicy) { p.Spec.Mode = "Audit" },
			wantErrors: []string{`spec.mode: Unsupported value: "Audit"`}},
	})
}

func validProxyConfig() *v1.ProxyConfig {
	return &v1.ProxyConfig{Spec: v1.ProxyConfigSpec{Replicas: ptr.To[int32](1)}}
}

func TestProxyConfigValidation(t *testing.T) {
	redis := &v1.LedgerConfig{Type: v1.LedgerRedis, Redis: &v1.RedisLedger{Address: "redis.tollgate.svc:6379"}}
	runCases(t, validProxyConfig, []celCase[*v1.ProxyConfig]{
		{desc: "replicas > 1 with the default ledger", mutate: func(p *v1.ProxyConfig) { p.Spec.Replicas = ptr.To[int32](3) },
			wantErrors: []string{"replicas > 1 needs ledger.type Redis: an Embedded ledger per replica would let tenants overspend"}},
		{desc: "replicas > 1 with an Embedded ledger", mutate: func(p *v1.ProxyConfig) {
			p.Spec.Replicas = ptr.To[int32](2)
			p.Spec.Ledger = &v1.LedgerConfig{Type: v1.LedgerEmbedded}
		}, wantErrors: []string{"replicas > 1 needs ledger.type Redis"}},
		{desc: "replicas > 1 with Redis is fine", mutate: func(p *v1.ProxyConfig) {
			p.Spec.Replicas = ptr.To[int32](3)
			p.Spec.Ledger = redis
		}},
		{desc: "Redis without an address", mutate: func(p *v1.ProxyConfig) { p.Spec.Ledger = &v1.LedgerConfig{Type: v1.LedgerRedis} },
			wantErrors: []string{"ledger.type Redis needs ledger.redis"}},
		{desc: "redis settings on an Embedded ledger", mutate: func(p *v1.ProxyConfig) {
			p.Spec.Ledger = &v1.LedgerConfig{Type: v1.LedgerEmbedded, Redis: redis.Redis}
		}, wantErrors: []string{"ledger.redis may only be set when ledger.type is Redis"}},
		{desc: "redis address without a port", mutate: func(p *v1.ProxyConfig) {
			p.Spec.Ledger = &v1.LedgerConfig{Type: v1.LedgerRedis, Redis: &v1.RedisLedger{Address: "redis"}}
		}, wantErrors: []string{"spec.ledger.redis.address: Invalid value"}},
		{desc: "unknown deployment mode", mutate: func(p *v1.ProxyConfig) { p.Spec.Deployment = "DaemonSet" },
			wantErrors: []string{`spec.deployment: Unsupported value: "DaemonSet"`}},
		{desc: "body limit too small", mutate: func(p *v1.ProxyConfig) { p.Spec.MaxRequestBodyBytes = ptr.To[int64](10) },
			wantErrors: []string{"maxRequestBodyBytes in body should be greater than or equal to 1024"}},
	})
}
