package translate

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
)

// bigSnapshot builds one Gateway with n tenants, n/5 routes, n/50 providers
// and 3n/10 policies (1,000 / 200 / 20 / 300 for n = 1,000), spread over ten
// namespaces, each tenant with two keys and three credits.
func bigSnapshot(n int) *Snapshot {
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns0"}, Spec: gwapiv1.GatewaySpec{
		GatewayClassName: "tollgate",
		Listeners: []gwapiv1.Listener{{Name: "http", Protocol: gwapiv1.HTTPProtocolType, Port: 80,
			AllowedRoutes: &gwapiv1.AllowedRoutes{Namespaces: &gwapiv1.RouteNamespaces{From: ptr.To(gwapiv1.NamespacesFromAll)}}}}}}
	s := &Snapshot{Now: goldenNow, Gateway: gw, Providers: map[string]*v1.ModelProvider{}, Tenants: map[string]*v1.Tenant{}, Secrets: map[string]*corev1.Secret{}}
	ns := func(i int) string { return fmt.Sprintf("ns%d", i%10) }
	for i := range n / 50 {
		mp := &v1.ModelProvider{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: ns(i)}, Spec: v1.ModelProviderSpec{
			Type: v1.ProviderOpenAI, Auth: &v1.ProviderAuth{SecretRef: v1.SecretKeyReference{Name: v1.ObjectName(fmt.Sprintf("p%d", i)), Key: "k"}}}}
		for m := range 10 {
			mp.Spec.Models = append(mp.Spec.Models, v1.ProviderModel{Name: v1.ModelName(fmt.Sprintf("model-%d", m)), Pricing: &v1.ModelPricing{InputPerMillion: "0.15", OutputPerMillion: "0.60"}})
		}
		s.Providers[key(mp.Namespace, mp.Name)] = mp
		s.Secrets[key(mp.Namespace, mp.Name)] = &corev1.Secret{Data: map[string][]byte{"k": []byte("sk")}}
	}
	for i := range n / 5 {
		r := &v1.AIRoute{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r%d", i), Namespace: ns(i)}, Spec: v1.AIRouteSpec{
			ParentRefs: []gwapiv1.ParentReference{{Name: "gw", Namespace: ptr.To(gwapiv1.Namespace("ns0"))}},
			Rules: []v1.AIRouteRule{{Name: "r", Matches: []v1.AIRouteMatch{{Model: ptr.To(v1.ModelPattern("model-*"))}},
				BackendRefs: []v1.AIBackendRef{{Name: v1.ObjectName(fmt.Sprintf("p%d", (i/10*10+i%10)%(n/50)))}}}}}}
		s.Routes = append(s.Routes, r)
	}
	for i := range n {
		t := &v1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("t%d", i), Namespace: ns(i), Labels: map[string]string{"plan": fmt.Sprint(i % 3)}}}
		for k := range 2 {
			secret := fmt.Sprintf("t%d-k%d", i, k)
			t.Spec.APIKeys = append(t.Spec.APIKeys, v1.TenantAPIKey{Name: v1.SectionName(fmt.Sprintf("k%d", k)), SecretRef: v1.SecretKeyReference{Name: v1.ObjectName(secret), Key: "api-key"}})
			s.Secrets[key(t.Namespace, secret)] = &corev1.Secret{Data: map[string][]byte{"api-key": []byte("tg_" + secret)}}
		}
		for c := range 3 {
			t.Spec.Credits = append(t.Spec.Credits, v1.CreditGrant{ID: fmt.Sprintf("c%d", c), Amount: "10.50"})
		}
		s.Tenants[key(t.Namespace, t.Name)] = t
	}
	for i := range n * 3 / 10 {
		p := &v1.PaymentPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pp%d", i), Namespace: ns(i)}, Spec: v1.PaymentPolicySpec{
			Budget: &v1.Budget{Limit: "100", Window: v1.BudgetWindow{Calendar: v1.CalendarMonth, Timezone: "Europe/Paris"}}}}
		if i%3 == 0 {
			p.Spec.TargetSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"plan": fmt.Sprint(i % 3)}}
		} else {
			p.Spec.TargetRefs = []gwapiv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
				Group: "tollgate.dev", Kind: "Tenant", Name: gwapiv1.ObjectName(fmt.Sprintf("t%d", i))}}}
		}
		s.Policies = append(s.Policies, p)
	}
	return s
}

func TestBigSnapshotTranslates(t *testing.T) {
	res := Gateway(bigSnapshot(1000))
	if res.Config == nil {
		t.Fatalf("not accepted: %+v", res.Conditions)
	}
	if len(res.Config.Tenants) != 1000 || len(res.Config.Routes) != 200 || len(res.Config.Providers) != 20 || len(res.Config.Policies) != 300 {
		t.Fatalf("config has %d tenants, %d routes, %d providers, %d policies",
			len(res.Config.Tenants), len(res.Config.Routes), len(res.Config.Providers), len(res.Config.Policies))
	}
}

// BenchmarkTranslate reports one Gateway's translation at three sizes, to
// show the cost per input stays flat (linear in the input).
func BenchmarkTranslate(b *testing.B) {
	for _, n := range []int{250, 500, 1000} {
		s := bigSnapshot(n)
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if Gateway(s).Config == nil {
					b.Fatal("not accepted")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/tenant")
		})
	}
}
