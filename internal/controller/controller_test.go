package controller

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/internal/translate"
)

var ctx = context.Background()

// applySamples creates config/samples in a fresh namespace (the GatewayClass once).
func applySamples(t *testing.T) string {
	t.Helper()
	ns := namespace(t)
	objs, err := testenv.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() != "GatewayClass" {
			u.SetNamespace(ns)
		}
		if err := k8s.Create(ctx, u); err != nil && !(u.GetKind() == "GatewayClass" && apierrors.IsAlreadyExists(err)) {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	return ns
}

func wantCondition(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, generation int64) error {
	c := meta.FindStatusCondition(conds, typ)
	switch {
	case c == nil:
		return fmt.Errorf("no %s condition in %v", typ, conds)
	case c.Status != status || c.Reason != reason:
		return fmt.Errorf("%s is %s/%s (%s), want %s/%s", typ, c.Status, c.Reason, c.Message, status, reason)
	case c.ObservedGeneration != generation:
		return fmt.Errorf("%s observedGeneration %d, want %d", typ, c.ObservedGeneration, generation)
	}
	return nil
}

// change reads an object, changes it and writes it back, again on a
// conflict: the controllers write status meanwhile.
func change[T client.Object](t *testing.T, ns, name string, obj T, mutate func(T)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			return err
		}
		mutate(obj)
		return k8s.Update(ctx, obj)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get[T client.Object](t *testing.T, ns, name string, obj T) (T, error) {
	t.Helper()
	err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	return obj, err
}

// proxyConfig reads the config the manager rendered for a Gateway.
func proxyConfig(t *testing.T, ns, gw string) (*dataplane.Config, error) {
	cm, err := get(t, ns, dataplane.Name(gw, ""), &corev1.ConfigMap{})
	if err != nil {
		return nil, err
	}
	return dataplane.Decode([]byte(cm.Data[dataplane.ConfigKey]))
}

func heartbeatLease(t *testing.T, ns, gw, holder, hash string) {
	t.Helper()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: gw + "-" + holder, Namespace: ns}}
	_, err := ctrlCreateOrUpdate(l, func() {
		l.Labels = map[string]string{dataplane.LabelHeartbeat: gw}
		l.Annotations = map[string]string{dataplane.AnnotationConfigHash: hash}
		l.Spec.HolderIdentity = ptr.To(holder)
		l.Spec.LeaseDurationSeconds = ptr.To[int32](30)
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func ctrlCreateOrUpdate(obj client.Object, mutate func()) (bool, error) {
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		mutate()
		return true, k8s.Create(ctx, obj)
	}
	mutate()
	return false, k8s.Update(ctx, obj)
}

// TestSamples applies config/samples and follows the Gateway through its life:
// objects rendered, statuses true, Programmed from heartbeats, references
// broken and fixed, keys rotated, External deployment, deletion.
func TestSamples(t *testing.T) {
	ns := applySamples(t)
	gwName := "ai-gateway"

	// The proxy infrastructure is rendered and owned by the Gateway.
	eventually(t, "rendered objects", func() error {
		gw, err := get(t, ns, gwName, &gwapiv1.Gateway{})
		if err != nil {
			return err
		}
		for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}, &corev1.ConfigMap{}, &corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
			if _, err := get(t, ns, dataplane.Name(gwName, ""), obj); err != nil {
				return fmt.Errorf("%T: %w", obj, err)
			}
			if ref := metav1.GetControllerOf(obj); ref == nil || ref.UID != gw.UID {
				return fmt.Errorf("%T is not owned by the Gateway", obj)
			}
		}
		creds, err := get(t, ns, dataplane.Name(gwName, "-credentials"), &corev1.Secret{})
		if err != nil {
			return err
		}
		if string(creds.Data[translate.CredentialKey(ns, "openai")]) != "sk-replace-with-your-key" {
			return fmt.Errorf("credentials Secret lacks the provider key: %v", keys(creds.Data))
		}
		return nil
	})
	cfg, err := proxyConfig(t, ns, gwName)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Tenants) != 2 || len(cfg.Routes) != 1 || len(cfg.Providers) != 1 || len(cfg.Policies) != 1 {
		t.Fatalf("config has %d tenants, %d routes, %d providers, %d policies", len(cfg.Tenants), len(cfg.Routes), len(cfg.Providers), len(cfg.Policies))
	}
	if strings.Contains(mustJSON(t, ns, gwName), "sk-replace-with-your-key") {
		t.Fatal("the ConfigMap holds a provider key")
	}

	// Every sample's conditions are true but Programmed and Enforced: no proxy yet.
	eventually(t, "sample statuses", func() error {
		gw, _ := get(t, ns, gwName, &gwapiv1.Gateway{})
		if err := wantCondition(gw.Status.Conditions, "Accepted", "True", "Accepted", gw.Generation); err != nil {
			return fmt.Errorf("Gateway: %w", err)
		}
		if err := wantCondition(gw.Status.Conditions, "Programmed", "False", "Pending", gw.Generation); err != nil {
			return fmt.Errorf("Gateway: %w", err)
		}
		if len(gw.Status.Listeners) != 1 || gw.Status.Listeners[0].AttachedRoutes != 1 || len(gw.Status.Addresses) != 1 {
			return fmt.Errorf("Gateway listeners %+v addresses %+v", gw.Status.Listeners, gw.Status.Addresses)
		}
		class, _ := get(t, "", "tollgate", &gwapiv1.GatewayClass{})
		if err := wantCondition(class.Status.Conditions, "Accepted", "True", "Accepted", class.Generation); err != nil {
			return fmt.Errorf("GatewayClass: %w", err)
		}
		route, _ := get(t, ns, "chat", &v1.AIRoute{})
		if len(route.Status.Parents) != 1 {
			return fmt.Errorf("AIRoute parents %+v", route.Status.Parents)
		}
		for _, c := range []string{"Accepted", "ResolvedRefs"} {
			if err := wantCondition(route.Status.Parents[0].Conditions, c, "True", c, route.Generation); err != nil {
				return fmt.Errorf("AIRoute: %w", err)
			}
		}
		mp, _ := get(t, ns, "openai", &v1.ModelProvider{})
		if err := wantCondition(mp.Status.Conditions, "Ready", "True", "Ready", mp.Generation); err != nil {
			return fmt.Errorf("ModelProvider: %w", err)
		}
		for _, name := range []string{"acme", "globex"} {
			tn, _ := get(t, ns, name, &v1.Tenant{})
			if err := wantCondition(tn.Status.Conditions, "Ready", "True", "Ready", tn.Generation); err != nil {
				return fmt.Errorf("Tenant %s: %w", name, err)
			}
			if len(tn.Status.Keys) != 1 || len(tn.Status.Keys[0].Fingerprint) != 12 {
				return fmt.Errorf("Tenant %s keys %+v", name, tn.Status.Keys)
			}
		}
		pp, _ := get(t, ns, "prepaid-plan", &v1.PaymentPolicy{})
		for c, want := range map[string][2]string{"Accepted": {"True", "Accepted"}, "ResolvedRefs": {"True", "ResolvedRefs"}, "Enforced": {"False", "Pending"}} {
			if err := wantCondition(pp.Status.Conditions, c, metav1.ConditionStatus(want[0]), want[1], pp.Generation); err != nil {
				return fmt.Errorf("PaymentPolicy: %w", err)
			}
		}
		if pp.Status.TenantCount != 2 || len(pp.Status.Ancestors) != 1 || string(pp.Status.Ancestors[0].AncestorRef.Name) != gwName {
			return fmt.Errorf("PaymentPolicy tenants %d ancestors %+v", pp.Status.TenantCount, pp.Status.Ancestors)
		}
		pc, _ := get(t, ns, "ai-gateway", &v1.ProxyConfig{})
		return wantCondition(pc.Status.Conditions, "Accepted", "True", "Accepted", pc.Generation)
	})

	// Generated keys: a strong random key with the prefix, owned by the Tenant, hashed into the config.
	acme, _ := get(t, ns, "acme", &v1.Tenant{})
	keySecret, err := get(t, ns, "acme-api-key", &corev1.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	apiKey := keySecret.Data["api-key"]
	if !strings.HasPrefix(string(apiKey), KeyPrefix) || len(apiKey) < 40 || !metav1.IsControlledBy(keySecret, acme) {
		t.Fatalf("generated key %d bytes, owned by tenant: %v", len(apiKey), metav1.IsControlledBy(keySecret, acme))
	}
	if acme.Status.Keys[0].Fingerprint != translate.Fingerprint(apiKey) || !configHasKey(cfg, ns+"/acme", translate.KeyHash(apiKey)) {
		t.Fatal("the key's fingerprint or hash does not match the generated key")
	}
	eventually(t, "KeyGenerated event", func() error { return hasEvent(ns, "acme", "KeyGenerated") })

	// Programmed follows heartbeats.
	heartbeatLease(t, ns, gwName, "proxy-a", cfg.Hash)
	eventually(t, "Programmed after a heartbeat, with an event", func() error {
		if err := hasEvent(ns, gwName, "Programmed"); err != nil {
			return err
		}
		gw, _ := get(t, ns, gwName, &gwapiv1.Gateway{})
		if err := wantCondition(gw.Status.Conditions, "Programmed", "True", "Programmed", gw.Generation); err != nil {
			return err
		}
		pp, _ := get(t, ns, "prepaid-plan", &v1.PaymentPolicy{})
		return wantCondition(pp.Status.Conditions, "Enforced", "True", "Enforced", pp.Generation)
	})
	showColumns(t, ns)
	heartbeatLease(t, ns, gwName, "proxy-b", "sha256:stale")
	eventually(t, "Pending while a live proxy serves a stale config", func() error {
		gw, _ := get(t, ns, gwName, &gwapiv1.Gateway{})
		return wantCondition(gw.Status.Conditions, "Programmed", "False", "Pending", gw.Generation)
	})
	heartbeatLease(t, ns, gwName, "proxy-b", cfg.Hash)
	eventually(t, "Programmed when every live proxy serves the current config", func() error {
		gw, _ := get(t, ns, gwName, &gwapiv1.Gateway{})
		return wantCondition(gw.Status.Conditions, "Programmed", "True", "Programmed", gw.Generation)
	})

	// Break the provider's Secret, then fix it.
	creds, _ := get(t, ns, "openai-credentials", &corev1.Secret{})
	if err := k8s.Delete(ctx, creds); err != nil {
		t.Fatal(err)
	}
	eventually(t, "provider refs broken, with a Warning event", func() error {
		if err := hasEvent(ns, "openai", "SecretNotFound"); err != nil {
			return err
		}
		mp, _ := get(t, ns, "openai", &v1.ModelProvider{})
		if err := wantCondition(mp.Status.Conditions, "ResolvedRefs", "False", "SecretNotFound", mp.Generation); err != nil {
			return err
		}
		if err := wantCondition(mp.Status.Conditions, "Ready", "False", "RefsNotResolved", mp.Generation); err != nil {
			return err
		}
		sec, _ := get(t, ns, dataplane.Name(gwName, "-credentials"), &corev1.Secret{})
		if len(sec.Data) != 0 {
			return fmt.Errorf("credentials still hold %v", keys(sec.Data))
		}
		return nil
	})
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "openai-credentials", Namespace: ns}, StringData: map[string]string{"api-key": "sk-new"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "provider refs fixed", func() error {
		mp, _ := get(t, ns, "openai", &v1.ModelProvider{})
		if err := wantCondition(mp.Status.Conditions, "Ready", "True", "Ready", mp.Generation); err != nil {
			return err
		}
		sec, _ := get(t, ns, dataplane.Name(gwName, "-credentials"), &corev1.Secret{})
		if string(sec.Data[translate.CredentialKey(ns, "openai")]) != "sk-new" {
			return fmt.Errorf("credentials hold %v", keys(sec.Data))
		}
		return nil
	})

	// A route that names an unknown provider, then a known one.
	change(t, ns, "chat", &v1.AIRoute{}, func(r *v1.AIRoute) { r.Spec.Rules[0].BackendRefs[0].Name = "ghost" })
	eventually(t, "route refs broken", func() error {
		r, _ := get(t, ns, "chat", &v1.AIRoute{})
		if len(r.Status.Parents) == 0 {
			return fmt.Errorf("no parents")
		}
		return wantCondition(r.Status.Parents[0].Conditions, "ResolvedRefs", "False", "ProviderNotFound", r.Generation)
	})
	change(t, ns, "chat", &v1.AIRoute{}, func(r *v1.AIRoute) { r.Spec.Rules[0].BackendRefs[0].Name = "openai" })
	eventually(t, "route refs fixed", func() error {
		r, _ := get(t, ns, "chat", &v1.AIRoute{})
		return wantCondition(r.Status.Parents[0].Conditions, "ResolvedRefs", "True", "ResolvedRefs", r.Generation)
	})

	// Rotating a key changes its hash in the config.
	change(t, ns, "acme-api-key", &corev1.Secret{}, func(s *corev1.Secret) { s.Data["api-key"] = []byte("tg_rotated-key-value") })
	eventually(t, "rotated key in the config", func() error {
		c, err := proxyConfig(t, ns, gwName)
		if err != nil {
			return err
		}
		if !configHasKey(c, ns+"/acme", translate.KeyHash([]byte("tg_rotated-key-value"))) {
			return fmt.Errorf("config %s has not the rotated key", c.Hash)
		}
		if c.Hash == cfg.Hash {
			return fmt.Errorf("hash unchanged")
		}
		return nil
	})

	// External: no Deployment or Service; the config objects stay.
	change(t, ns, "ai-gateway", &v1.ProxyConfig{}, func(pc *v1.ProxyConfig) { pc.Spec.Deployment = v1.DeploymentExternal })
	eventually(t, "External prunes the Deployment and Service", func() error {
		for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
			if o, err := get(t, ns, dataplane.Name(gwName, ""), obj); err == nil && o.GetDeletionTimestamp() == nil {
				return fmt.Errorf("%T still exists", obj)
			}
		}
		_, err := get(t, ns, dataplane.Name(gwName, ""), &corev1.ConfigMap{})
		return err
	})

	// Deleting the Gateway garbage-collects what it owned.
	gw, _ := get(t, ns, gwName, &gwapiv1.Gateway{})
	if err := k8s.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "owned objects collected", func() error {
		for _, obj := range []client.Object{&corev1.ConfigMap{}, &corev1.ServiceAccount{}, &rbacv1.Role{}} {
			if _, err := get(t, ns, dataplane.Name(gwName, ""), obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T still there (%v)", obj, err)
			}
		}
		if _, err := get(t, ns, dataplane.Name(gwName, "-credentials"), &corev1.Secret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("credentials Secret still there (%v)", err)
		}
		return nil
	})
}

// showColumns runs kubectl get tollgate and checks the columns an operator scans.
func showColumns(t *testing.T, ns string) {
	t.Helper()
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(assets, "kubectl"), "--kubeconfig", kubeconfig, "get", "tollgate,gateway", "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl: %v\n%s", err, out)
	}
	t.Logf("kubectl get tollgate,gateway -n %s\n%s", ns, out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`modelprovider.tollgate.dev/openai\s+OpenAI\s+True\s+Ready`),
		regexp.MustCompile(`airoute.tollgate.dev/chat\s+Open\s+True\s+True`),
		regexp.MustCompile(`tenant.tollgate.dev/acme\s+True`),
		regexp.MustCompile(`paymentpolicy.tollgate.dev/prepaid-plan\s+Enforce\s+True\s+True\s+2`),
		regexp.MustCompile(`proxyconfig.tollgate.dev/ai-gateway\s+Managed\s+1\s+Embedded\s+True`),
		regexp.MustCompile(`gateway.gateway.networking.k8s.io/ai-gateway\s+tollgate\s+\S+\s+True`),
	} {
		if !want.Match(out) {
			t.Errorf("kubectl output lacks %s", want)
		}
	}
}

// hasEvent finds an Event about an object with a reason.
func hasEvent(ns, regarding, reason string) error {
	events := &eventsv1.EventList{}
	if err := k8s.List(ctx, events, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, e := range events.Items {
		if e.Reason == reason && e.Regarding.Name == regarding {
			return nil
		}
	}
	return fmt.Errorf("no %s event about %s among %d", reason, regarding, len(events.Items))
}

func configHasKey(c *dataplane.Config, tenant, hash string) bool {
	for _, t := range c.Tenants {
		if t.Name == tenant {
			for _, k := range t.Keys {
				if k.SHA256 == hash {
					return true
				}
			}
		}
	}
	return false
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func mustJSON(t *testing.T, ns, gw string) string {
	cm, err := get(t, ns, dataplane.Name(gw, ""), &corev1.ConfigMap{})
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data[dataplane.ConfigKey]
}

// TestApprovalRequired: only approved, subscribed tenants reach a route.
func TestApprovalRequired(t *testing.T) {
	ns := applySamples(t)
	change(t, ns, "chat", &v1.AIRoute{}, func(r *v1.AIRoute) {
		r.Spec.Access = &v1.RouteAccess{Mode: v1.AccessApprovalRequired, Tenants: []v1.ObjectName{"acme"}}
	})
	for _, name := range []string{"acme", "globex"} {
		change(t, ns, name, &v1.Tenant{}, func(tn *v1.Tenant) { tn.Spec.Subscriptions = []v1.ObjectName{"chat"} })
	}
	eventually(t, "subscription states", func() error {
		for name, want := range map[string]v1.SubscriptionState{"acme": v1.SubscriptionApproved, "globex": v1.SubscriptionPending} {
			tn, _ := get(t, ns, name, &v1.Tenant{})
			if len(tn.Status.Subscriptions) != 1 || tn.Status.Subscriptions[0].State != want {
				return fmt.Errorf("%s subscriptions %+v, want %s", name, tn.Status.Subscriptions, want)
			}
		}
		c, err := proxyConfig(t, ns, "ai-gateway")
		if err != nil {
			return err
		}
		if r := c.Routes[0]; !r.ApprovalRequired || len(r.Tenants) != 1 || r.Tenants[0] != ns+"/acme" {
			return fmt.Errorf("route access in config: %+v %v", r.ApprovalRequired, r.Tenants)
		}
		return nil
	})
	// Approval is a merged change: list globex too.
	change(t, ns, "chat", &v1.AIRoute{}, func(r *v1.AIRoute) { r.Spec.Access.Tenants = append(r.Spec.Access.Tenants, "globex") })
	eventually(t, "globex approved", func() error {
		tn, _ := get(t, ns, "globex", &v1.Tenant{})
		if len(tn.Status.Subscriptions) != 1 || tn.Status.Subscriptions[0].State != v1.SubscriptionApproved {
			return fmt.Errorf("globex subscriptions %+v", tn.Status.Subscriptions)
		}
		return nil
	})
}

// TestPolicyTargetNotFound: a policy whose only target is missing is not
// accepted until the target appears.
func TestPolicyTargetNotFound(t *testing.T) {
	ns := applySamples(t)
	p := &v1.PaymentPolicy{ObjectMeta: metav1.ObjectMeta{Name: "for-later", Namespace: ns}, Spec: v1.PaymentPolicySpec{
		TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{
			Group: "tollgate.dev", Kind: "Tenant", Name: "initech"}}},
		Budget: &v1.Budget{Limit: "5", Window: v1.BudgetWindow{Calendar: v1.CalendarMonth, Timezone: "Europe/Paris"}},
	}}
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "TargetNotFound", func() error {
		got, _ := get(t, ns, "for-later", &v1.PaymentPolicy{})
		return wantCondition(got.Status.Conditions, "Accepted", "False", "TargetNotFound", got.Generation)
	})
	tn := &v1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "initech", Namespace: ns}, Spec: v1.TenantSpec{
		APIKeys: []v1.TenantAPIKey{{Name: "k", SecretRef: v1.SecretKeyReference{Name: "initech-key", Key: "api-key"}}}}}
	if err := k8s.Create(ctx, tn); err != nil {
		t.Fatal(err)
	}
	eventually(t, "accepted once the tenant exists, and in the config", func() error {
		got, _ := get(t, ns, "for-later", &v1.PaymentPolicy{})
		if err := wantCondition(got.Status.Conditions, "Accepted", "True", "Accepted", got.Generation); err != nil {
			return err
		}
		c, err := proxyConfig(t, ns, "ai-gateway")
		if err != nil {
			return err
		}
		for _, p := range c.Policies {
			if p.Name == ns+"/for-later" && p.Budget != nil && p.Budget.Timezone == "Europe/Paris" {
				return nil
			}
		}
		return fmt.Errorf("policy not in the config")
	})
}
