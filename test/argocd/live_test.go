package argocd

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/internal/controller"
	"github.com/tollgate-dev/tollgate/internal/scheme"
	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// refusedSpecs are the testdata objects whose spec today's CRDs refuse:
// they stand for objects stored before a CEL rule existed.
var refusedSpecs = []string{"modelprovider/degraded-invalid.yaml", "proxyconfig/degraded-invalid.yaml"}

// TestLive checks the testdata and the scripts against a real API server
// with the Tollgate CRDs (built and cached as make test does; skipped with
// -short): every testdata status is one the CRDs accept and keep as is,
// and the scripts judge what the real controllers write as this package's
// cases say.
func TestLive(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the envtest API server")
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// Before the controllers run, so that nothing overwrites these statuses.
	t.Run("testdata statuses are valid", func(t *testing.T) { testdataIsValid(ctx, t, env.Client) })

	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: scheme.New(), Cache: controller.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		// Controller names are process-wide; -count=2 starts the manager twice.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := controller.Setup(ctx, mgr, controller.Options{ProxyImage: "ghcr.io/tollgate-dev/tollgate:test"}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	t.Run("controller statuses", func(t *testing.T) { controllerStatuses(ctx, t, env.Client) })
}

// testdataIsValid creates every testdata object and writes its status
// through the status subresource: the API server must accept it and read
// it back unchanged (a structural schema silently drops unknown fields).
func testdataIsValid(ctx context.Context, t *testing.T, c client.Client) {
	var refused []string
	for kind, kindCases := range cases {
		healthySpec := readObject(t, filepath.Join("testdata", kind, "healthy.yaml"))["spec"]
		for _, tc := range kindCases {
			name := kind + "/" + tc.file
			obj := readObject(t, filepath.Join("testdata", kind, tc.file))
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": obj["apiVersion"], "kind": obj["kind"], "spec": obj["spec"],
				"metadata": map[string]any{"name": (&unstructured.Unstructured{Object: obj}).GetName(),
					"namespace": newNamespace(ctx, t, c)},
			}}
			err := c.Create(ctx, u.DeepCopy())
			if apierrors.IsInvalid(err) {
				refused = append(refused, name)
				u.Object["spec"] = healthySpec
				err = c.Create(ctx, u)
			} else if err == nil {
				err = c.Get(ctx, client.ObjectKeyFromObject(u), u)
			}
			if err != nil {
				t.Errorf("%s: creating: %v", name, err)
				continue
			}
			status, ok := obj["status"]
			if !ok {
				continue
			}
			u.Object["status"] = status
			if err := c.Status().Update(ctx, u); err != nil {
				t.Errorf("%s: the API server refuses the status: %v", name, err)
				continue
			}
			back := &unstructured.Unstructured{}
			back.SetGroupVersionKind(u.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKeyFromObject(u), back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(status, back.Object["status"]); diff != "" {
				t.Errorf("%s: the API server changed the status (-testdata +stored):\n%s", name, diff)
			}
		}
	}
	slices.Sort(refused)
	if diff := cmp.Diff(refusedSpecs, refused); diff != "" {
		t.Errorf("testdata specs the CRDs refuse (-want +got):\n%s", diff)
	}
}

// liveObjects are applied with config/samples: broken on purpose.
const liveObjects = `
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {name: no-secret}
spec:
  type: OpenAI
  auth: {secretRef: {name: missing-credentials, key: api-key}}
---
apiVersion: tollgate.dev/v1alpha1
kind: AIRoute
metadata: {name: typo}
spec:
  parentRefs: [{name: ai-gatway}]
  rules: [{name: gpt, backendRefs: [{name: openai}]}]
---
apiVersion: tollgate.dev/v1alpha1
kind: AIRoute
metadata: {name: ghost}
spec:
  parentRefs: [{name: ai-gateway}]
  rules: [{name: gpt, backendRefs: [{name: ghost-provider}]}]
---
apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: paused}
spec:
  suspended: true
  apiKeys: [{name: default, secretRef: {name: paused-api-key, key: api-key}}]
---
apiVersion: v1
kind: Secret
metadata: {name: half-key}
stringData: {other: x}
---
apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: half}
spec:
  apiKeys: [{name: default, secretRef: {name: half-key, key: api-key}}]
---
apiVersion: tollgate.dev/v1alpha1
kind: PaymentPolicy
metadata: {name: no-target}
spec:
  targetRefs: [{group: tollgate.dev, kind: AIRoute, name: chat-v2}]
  budget: {limit: "10", window: {calendar: Month}}
---
apiVersion: tollgate.dev/v1alpha1
kind: PaymentPolicy
metadata: {name: bad-zone}
spec:
  targetRefs: [{group: tollgate.dev, kind: AIRoute, name: chat}]
  budget: {limit: "10", window: {calendar: Month, timezone: Mars/Olympus_Mons}}
`

// controllerStatuses applies config/samples and liveObjects and waits for
// each script to judge each object as expected.
func controllerStatuses(ctx context.Context, t *testing.T, c client.Client) {
	ns := newNamespace(ctx, t, c)
	objs, err := testenv.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for doc := range strings.SplitSeq(liveObjects, "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	for _, u := range objs {
		if u.GetKind() != "GatewayClass" {
			u.SetNamespace(ns)
		}
		if err := c.Create(ctx, u); err != nil && !(u.GetKind() == "GatewayClass" && apierrors.IsAlreadyExists(err)) {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	for _, want := range []struct {
		kind, name string
		status     string
		mention    string
	}{
		{"ModelProvider", "openai", "Healthy", "can be routed to"},
		{"ModelProvider", "no-secret", "Degraded", "SecretNotFound"},
		{"AIRoute", "chat", "Healthy", "Gateway " + ns + "/ai-gateway"},
		{"AIRoute", "typo", "Degraded", "NoMatchingParent"},
		{"AIRoute", "ghost", "Degraded", "ProviderNotFound"},
		{"Tenant", "acme", "Healthy", "can call the gateway"},
		{"Tenant", "paused", "Healthy", "suspended"},
		{"Tenant", "half", "Progressing", "KeysPending"},
		{"PaymentPolicy", "prepaid-plan", "Progressing", "Pending"}, // no proxy runs: no Gateway is programmed
		{"PaymentPolicy", "no-target", "Degraded", "TargetNotFound"},
		{"PaymentPolicy", "bad-zone", "Degraded", "Invalid"},
		{"ProxyConfig", "ai-gateway", "Healthy", "valid"},
	} {
		script := readScript(t, strings.ToLower(want.kind))
		var got health
		var obj *unstructured.Unstructured
		err := poll(30*time.Second, func() error {
			obj = &unstructured.Unstructured{}
			obj.SetAPIVersion("tollgate.dev/v1alpha1")
			obj.SetKind(want.kind)
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: want.name}, obj); err != nil {
				return err
			}
			if got, err = runHealth(script, obj.Object); err != nil {
				return err
			}
			if got.Status != want.status || !strings.Contains(got.Message, want.mention) {
				return fmt.Errorf("%s: %s", got.Status, got.Message)
			}
			return nil
		})
		if err != nil {
			status, _ := yaml.Marshal(obj.Object["status"])
			t.Errorf("%s %s: want %s mentioning %q, got %v\nstatus:\n%s", want.kind, want.name, want.status, want.mention, err, status)
			continue
		}
		t.Logf("%s %s: %s: %s", want.kind, want.name, got.Status, got.Message)
	}
}

func poll(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newNamespace(ctx context.Context, t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "argocd-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}
