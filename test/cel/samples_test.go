package cel

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// TestSamplesAccepted applies every sample and checks that each kind of the
// API is covered.
func samples(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := testenv.Samples()
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestSamplesAccepted(t *testing.T) {
	ns := namespace(t)
	kinds := map[string]bool{}
	for _, u := range samples(t) {
		if u.GetKind() != "GatewayClass" {
			u.SetNamespace(ns)
		}
		// The cluster-scoped GatewayClass may be left from an earlier run on this API server.
		if err := env.Client.Create(context.Background(), u); err != nil && !(u.GetKind() == "GatewayClass" && apierrors.IsAlreadyExists(err)) {
			t.Errorf("sample %s/%s refused: %v", u.GetKind(), u.GetName(), err)
		}
		kinds[u.GetKind()] = true
	}
	// The samples write out every default, so the API server adds nothing to
	// them: what GitOps applies is what lives, and no tool shows a diff.
	for _, u := range samples(t) {
		if u.GetKind() == "Secret" {
			continue // stringData is moved into data; not a spec
		}
		if u.GetKind() != "GatewayClass" {
			u.SetNamespace(ns)
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(u), live); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(normal(t, u.Object["spec"]), normal(t, live.Object["spec"])); diff != "" {
			t.Errorf("the API server changed the spec of sample %s/%s (-sample +live); write the defaults in the sample:\n%s", u.GetKind(), u.GetName(), diff)
		}
	}
	for _, k := range []string{v1.ModelProviderKind, v1.AIRouteKind, v1.TenantKind, v1.PaymentPolicyKind, v1.ProxyConfigKind, "Gateway", "GatewayClass"} {
		if !kinds[k] {
			t.Errorf("config/samples has no %s", k)
		}
	}
}

// TestDefaults checks that defaults land as the field docs say.
func TestDefaults(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()

	p := validPolicy()
	p.Name, p.Namespace = "defaults", ns
	p.Spec.PaymentRequired = &v1.PaymentRequired{X402: x402()}
	if err := create(t, p); err != nil {
		t.Fatal(err)
	}
	got := &v1.PaymentPolicy{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
		t.Fatal(err)
	}
	opt := got.Spec.PaymentRequired.X402.Accepts[0]
	for field, pair := range map[string][2]any{
		"mode":                   {got.Spec.Mode, v1.PolicyEnforce},
		"currency":               {got.Spec.Currency, v1.Currency("USD")},
		"admission":              {got.Spec.Admission, v1.AdmissionReserve},
		"failureMode":            {got.Spec.FailureMode, v1.FailClosed},
		"x402 scheme":            {opt.Scheme, "exact"},
		"x402 decimals":          {*opt.Decimals, int32(6)},
		"x402 maxTimeoutSeconds": {opt.MaxTimeoutSeconds, int32(60)},
	} {
		if pair[0] != pair[1] {
			t.Errorf("PaymentPolicy %s defaulted to %v, want %v", field, pair[0], pair[1])
		}
	}

	r := validRoute()
	r.Name, r.Namespace = "defaults", ns
	r.Spec.Access = &v1.RouteAccess{}
	r.Spec.Rules[0].Matches = append(r.Spec.Rules[0].Matches, v1.AIRouteMatch{Path: &v1.PathMatch{Value: "/v1/chat"}})
	if err := create(t, r); err != nil {
		t.Fatal(err)
	}
	gotR := &v1.AIRoute{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(r), gotR); err != nil {
		t.Fatal(err)
	}
	b := gotR.Spec.Rules[0].BackendRefs[0]
	if *b.Weight != 1 || *b.Priority != 0 || gotR.Spec.Access.Mode != v1.AccessOpen || gotR.Spec.Rules[0].Matches[1].Path.Type != v1.PathMatchPathPrefix {
		t.Errorf("AIRoute defaults: weight %d priority %d access %q path type %q", *b.Weight, *b.Priority, gotR.Spec.Access.Mode, gotR.Spec.Rules[0].Matches[1].Path.Type)
	}

	mp := validProvider()
	mp.Name, mp.Namespace = "defaults", ns
	if err := create(t, mp); err != nil {
		t.Fatal(err)
	}
	gotMP := &v1.ModelProvider{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mp), gotMP); err != nil {
		t.Fatal(err)
	}
	if gotMP.Spec.Currency != "USD" {
		t.Errorf("ModelProvider currency defaulted to %q", gotMP.Spec.Currency)
	}

	pc := &v1.ProxyConfig{Spec: v1.ProxyConfigSpec{Ledger: &v1.LedgerConfig{}, Logging: &v1.ProxyLogging{}}}
	pc.Name, pc.Namespace = "defaults", ns
	if err := create(t, pc); err != nil {
		t.Fatal(err)
	}
	gotPC := &v1.ProxyConfig{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pc), gotPC); err != nil {
		t.Fatal(err)
	}
	if gotPC.Spec.Deployment != v1.DeploymentManaged || gotPC.Spec.Ledger.Type != v1.LedgerEmbedded || gotPC.Spec.Logging.Level != "info" {
		t.Errorf("ProxyConfig defaults: deployment %q ledger %q level %q", gotPC.Spec.Deployment, gotPC.Spec.Ledger.Type, gotPC.Spec.Logging.Level)
	}
}

// TestRoundTrip writes a fully populated object of each kind, spec and
// status, and reads back exactly what was written.
func TestRoundTrip(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	now := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	cond := []metav1.Condition{{Type: string(v1.ConditionAccepted), Status: metav1.ConditionTrue, Reason: string(v1.ReasonAccepted), Message: "ok", ObservedGeneration: 1, LastTransitionTime: now}}
	parent := gwapiv1.ParentReference{Name: "ai-gateway", Group: ptr.To(gwapiv1.Group("gateway.networking.k8s.io")), Kind: ptr.To(gwapiv1.Kind("Gateway"))}

	mp := validProvider()
	mp.Spec.BaseURL, mp.Spec.Currency, mp.Spec.Timeout = "https://api.openai.com/v1", "USD", &metav1.Duration{Duration: 30 * time.Second}
	mp.Spec.Models[0].Pricing.CachedInputPerMillion = "0.075"
	mp.Status = v1.ModelProviderStatus{Conditions: cond, ObservedGeneration: 1}

	r := validRoute()
	r.Spec.ParentRefs[0] = parent
	r.Spec.Hostnames = []gwapiv1.Hostname{"ai.example.com"}
	r.Spec.Access = &v1.RouteAccess{Mode: v1.AccessApprovalRequired, Tenants: []v1.ObjectName{"acme"}}
	r.Spec.Rules[0].Matches[0].Headers = []v1.HTTPHeader{{Name: "x-team", Value: "search"}}
	r.Spec.Rules[0].BackendRefs[0].Weight, r.Spec.Rules[0].BackendRefs[0].Priority = ptr.To[int32](3), ptr.To[int32](0)
	r.Spec.Rules[0].Retries = &v1.RetryPolicy{Attempts: 2, Backoff: &metav1.Duration{Duration: 100 * time.Millisecond}}
	r.Spec.Rules[0].Timeout = &metav1.Duration{Duration: time.Minute}
	pr := promptRule()
	pr.Matches[0].Path.Type = v1.PathMatchExact
	pr.Prompt.System = "Be brief."
	pr.Prompt.Variables = append(pr.Prompt.Variables, v1.PromptVariable{Name: "n", Default: ptr.To("3")})
	pr.BackendRefs[0].Weight, pr.BackendRefs[0].Priority = ptr.To[int32](1), ptr.To[int32](0)
	r.Spec.Rules = append(r.Spec.Rules, pr)
	r.Status.Parents = []gwapiv1.RouteParentStatus{{ParentRef: parent, ControllerName: v1.ControllerName, Conditions: cond}}

	tn := validTenant()
	tn.Spec.DisplayName, tn.Spec.Suspended = "ACME", true
	tn.Spec.AllowedModels = []v1.ModelPattern{"gpt-4o*"}
	tn.Spec.Subscriptions = []v1.ObjectName{"chat"}
	tn.Spec.Credits[0].ExpiresAt = &now
	tn.Status = v1.TenantStatus{
		Conditions:    cond,
		Keys:          []v1.KeyStatus{{Name: "default", Fingerprint: "3f2a9c0d1e4b"}},
		Subscriptions: []v1.SubscriptionStatus{{Route: "chat", State: v1.SubscriptionPending}},
		Usage: &v1.TenantUsage{Currency: "USD", Spent: "1.25", Remaining: "8.75", Requests: 42, InputTokens: 1000,
			OutputTokens: 2000, WindowStart: &now, UpdatedAt: &now},
		ObservedGeneration: 1,
	}

	p := validPolicy()
	p.Spec.Mode, p.Spec.Currency, p.Spec.Admission, p.Spec.FailureMode = v1.PolicyDryRun, "EUR", v1.AdmissionSettle, v1.FailOpen
	p.Spec.Pricing = &v1.PolicyPricing{MarkupPercent: "12.5", Models: []v1.PolicyModelPrice{{Name: "gpt-4o*", InputPerMillion: "3", OutputPerMillion: "12", PerRequest: "0.001"}}}
	p.Spec.Budget = &v1.Budget{Limit: "100", Window: v1.BudgetWindow{Calendar: v1.CalendarQuarter, Timezone: "Asia/Tokyo"}}
	p.Spec.SoftLimits = []int32{50, 90}
	x := x402()
	x.Accepts[0].Scheme, x.Accepts[0].Decimals, x.Accepts[0].MaxTimeoutSeconds = "exact", ptr.To[int32](6), 120
	x.Accepts[0].Extra = &apiextensionsv1.JSON{Raw: []byte(`{"name":"USDC","version":"2"}`)}
	x.Facilitator.SecretRef = &v1.SecretKeyReference{Name: "facilitator", Key: "token"}
	p.Spec.PaymentRequired = &v1.PaymentRequired{Message: "Top up", Code: "credits_exhausted", TopUpURL: "https://billing.example.com",
		Headers: []v1.HTTPHeader{{Name: "X-Billing", Value: "yes"}}, X402: x}
	p.Status = v1.PaymentPolicyStatus{
		Ancestors:  []gwapiv1.PolicyAncestorStatus{{AncestorRef: parent, ControllerName: v1.ControllerName, Conditions: cond}},
		Conditions: cond, TenantCount: 1, TopTenants: []v1.TenantSpend{{Tenant: "acme", Spent: "1.00", Remaining: "99.00", Requests: 3}},
		ObservedGeneration: 1,
	}

	pc := &v1.ProxyConfig{Spec: v1.ProxyConfigSpec{
		Replicas: ptr.To[int32](2), Image: "ghcr.io/tollgate-dev/tollgate:v0.1.0", Deployment: v1.DeploymentExternal,
		Logging:             &v1.ProxyLogging{Level: "debug", LogPrompts: true},
		Ledger:              &v1.LedgerConfig{Type: v1.LedgerRedis, Redis: &v1.RedisLedger{Address: "redis:6379", TLS: true, SecretRef: &v1.SecretKeyReference{Name: "redis", Key: "password"}}},
		MaxRequestBodyBytes: ptr.To[int64](1 << 20),
	}, Status: v1.ProxyConfigStatus{Conditions: cond, ObservedGeneration: 1}}

	for _, obj := range []client.Object{mp, r, tn, p, pc} {
		obj.SetName("round-trip")
		obj.SetNamespace(ns)
		want := obj.DeepCopyObject().(client.Object)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("%T: %v", obj, err)
		}
		// Status is a subresource: the create dropped it, so write it now.
		statusOf(obj, want)
		if err := env.Client.Status().Update(ctx, obj); err != nil {
			t.Fatalf("%T status: %v", obj, err)
		}
		got := obj.DeepCopyObject().(client.Object)
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
			t.Fatal(err)
		}
		sameTime := cmp.Comparer(func(a, b metav1.Time) bool { return a.Equal(&b) })
		for _, part := range []string{"Spec", "Status"} {
			if diff := cmp.Diff(field(want, part), field(got, part), sameTime); diff != "" {
				t.Errorf("%T %s changed in a round trip (-want +got):\n%s", obj, part, diff)
			}
		}
	}
}

// normal round-trips a value through JSON, so that 80 and 80.0 compare equal.
func normal(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func field(obj client.Object, name string) any {
	return reflect.ValueOf(obj).Elem().FieldByName(name).Interface()
}

func statusOf(dst, src client.Object) {
	reflect.ValueOf(dst).Elem().FieldByName("Status").Set(reflect.ValueOf(src).Elem().FieldByName("Status"))
}

// TestKubectl runs the kubectl that hack/ builds against the API server:
// explain shows the field docs, and the tollgate category lists every kind.
func TestKubectl(t *testing.T) {
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(assets, "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Dir = testenv.RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	explain := kubectl("explain", "tenant.spec.credits")
	for _, want := range []string{"credits are prepaid grants", "id\t<string> -required-", "amount\t<string> -required-", "expiresAt"} {
		if !strings.Contains(explain, want) {
			t.Errorf("kubectl explain tenant.spec.credits lacks %q:\n%s", want, explain)
		}
	}

	ns := namespace(t)
	for _, obj := range []client.Object{validProvider(), validRoute(), validTenant(), validPolicy(), validProxyConfig()} {
		obj.SetName("listed")
		obj.SetNamespace(ns)
		if err := create(t, obj); err != nil {
			t.Fatal(err)
		}
	}
	list := kubectl("get", "tollgate", "-A")
	for _, want := range []string{"modelprovider.tollgate.dev/listed", "airoute.tollgate.dev/listed", "tenant.tollgate.dev/listed",
		"paymentpolicy.tollgate.dev/listed", "proxyconfig.tollgate.dev/listed"} {
		if !strings.Contains(list, want) {
			t.Errorf("kubectl get tollgate -A lacks %q:\n%s", want, list)
		}
	}
	// The kustomize install is accepted by the API server as a whole.
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tollgate-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	install := kubectl("apply", "--server-side", "--dry-run=server", "-k", "config/default")
	for _, want := range []string{"deployment.apps/tollgate-controller-manager serverside-applied", "clusterrole.rbac.authorization.k8s.io/tollgate-manager-role serverside-applied"} {
		if !strings.Contains(install, want) {
			t.Errorf("kubectl apply -k config/default lacks %q:\n%s", want, install)
		}
	}

	for short, header := range map[string]string{"mp": "READY", "air": "ACCESS", "tn": "REMAINING", "pp": "ENFORCED", "pxc": "LEDGER"} {
		if out := kubectl("get", short, "-n", ns); !strings.Contains(out, header) {
			t.Errorf("kubectl get %s has no %s column:\n%s", short, header, out)
		}
	}
}
