//go:build e2e

// Package e2e runs the whole product as processes on a real API server:
// the manager, proxies out of cluster, a fake provider speaking OpenAI and
// Anthropic, kubectl, and the official SDKs as clients. Run: make test-e2e.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/devstack"
	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/internal/testredis"
)

var (
	stack *devstack.Stack
	fake  *fakeprovider.Server
)

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "tollgate-e2e")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := os.Chdir(testenv.RepoRoot()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if stack, err = devstack.Start(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stack.Stop()
		if fake, err = fakeprovider.Start(fakeprovider.Options{ReplyWords: 200}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer fake.Close()
		return m.Run()
	}()
	os.Exit(code)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(stack.Kubectl, append([]string{"--kubeconfig", stack.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func eventually(t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// deploy applies the samples (and an Anthropic provider and route) to a
// namespace, with extra edits, and runs proxies for its Gateway.
func deploy(t *testing.T, ns string, proxies int, edit func(*unstructured.Unstructured)) []string {
	t.Helper()
	ext := devstack.External(fake.URL()+"/v1", fakeprovider.OpenAIKey)
	if err := stack.Samples(ctx(t), ns, func(u *unstructured.Unstructured) {
		ext(u)
		if edit != nil {
			edit(u)
		}
	}); err != nil {
		t.Fatal(err)
	}
	anthropicObjs := fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: anthropic-credentials, namespace: %[1]s}
stringData: {api-key: %[2]s}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {name: anthropic, namespace: %[1]s}
spec:
  type: Anthropic
  baseURL: %[3]s/v1
  auth: {secretRef: {name: anthropic-credentials, key: api-key}}
  models: [{name: claude-sonnet-4-5, pricing: {inputPerMillion: "3", outputPerMillion: "15"}}]
---
apiVersion: tollgate.dev/v1alpha1
kind: AIRoute
metadata: {name: claude, namespace: %[1]s}
spec:
  parentRefs: [{name: ai-gateway}]
  rules: [{name: claude, matches: [{model: "claude-*"}], backendRefs: [{name: anthropic}]}]
`, ns, fakeprovider.AnthropicKey, fake.URL())
	apply(t, anthropicObjs)
	// globex may call claude too.
	var addrs []string
	for i := range proxies {
		addr := freeAddr(t)
		if _, err := stack.Proxy(ns+"/ai-gateway", addr, ns+"-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, "http://"+addr)
	}
	kubectl(t, "wait", "--for=condition=Programmed", "gateway/ai-gateway", "-n", ns, "--timeout=120s")
	return addrs
}

func apply(t *testing.T, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "apply", "--server-side", "--field-manager=gitops", "-f", f)
}

func tenantKey(t *testing.T, ns, tenant string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := stack.Env.Client.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: tenant + "-api-key"}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data["api-key"])
}

func chat(url, key, model string, maxTokens int64) (*http.Response, error) {
	c := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
	var resp *http.Response
	_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: openai.ChatModel(model), MaxTokens: openai.Int(maxTokens),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello from the tollgate.")}}, option.WithResponseInto(&resp))
	return resp, err
}

func status(err error) int {
	var e *openai.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	if err != nil {
		return -1
	}
	return 200
}

// TestProduct follows a tenant through the product: traffic with both SDKs,
// spend in kubectl, the declared 402, a top-up merged as GitOps would, a
// config change under load, and a broken provider Secret.
func TestProduct(t *testing.T) {
	const ns = "e2e"
	url := deploy(t, ns, 1, nil)[0]
	acme := tenantKey(t, ns, "acme")

	// Both SDKs, plain and streamed, across providers.
	if _, err := chat(url, acme, "gpt-4o-mini", 20); err != nil {
		t.Fatalf("openai-go: %v", err)
	}
	ac := anthropic.NewClient(aoption.WithBaseURL(url), aoption.WithAPIKey(tenantKey(t, ns, "globex")), aoption.WithMaxRetries(0))
	msg, err := ac.Messages.New(ctx(t), anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 50,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))}})
	if err != nil || msg.Usage.OutputTokens == 0 {
		t.Fatalf("anthropic SDK: %v", err)
	}
	oc := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey(acme), option.WithMaxRetries(0))
	stream := oc.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{Model: "gpt-4o-mini", MaxTokens: openai.Int(20),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream")}, StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if stream.Err() != nil || acc.Usage.CompletionTokens == 0 {
		t.Fatalf("openai-go stream: %v %+v", stream.Err(), acc.Usage)
	}

	// Spend acme's credit until the declared 402.
	var refused bool
	for range 300 {
		_, err := chat(url, acme, "gpt-4o-mini", 1000)
		if status(err) == 402 {
			var e *openai.Error
			errors.As(err, &e)
			if e.Type != "insufficient_quota" || e.Code != "credits_exhausted" {
				t.Fatalf("not the declared 402: %v", err)
			}
			refused = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !refused {
		t.Fatal("acme's small credit never ran out")
	}

	// Spend shows in kubectl get tenants within 30 s.
	eventually(t, "spend in kubectl get tenants", 30*time.Second, func() error {
		out := kubectl(t, "get", "tenants", "-n", ns, "acme", "-o", "jsonpath={.status.usage.spent} {.status.usage.remaining} {.status.usage.requests}")
		f := strings.Fields(out)
		if len(f) != 3 || f[0] == "0.00" || f[2] == "0" {
			return fmt.Errorf("tenant usage %q", out)
		}
		return nil
	})
	t.Logf("kubectl get tenants -n %s:\n%s", ns, kubectl(t, "get", "tenants", "-n", ns))

	// A credit merged in git and re-applied: traffic resumes.
	apply(t, fmt.Sprintf(`
apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: acme, namespace: %s}
spec:
  credits: [{id: top-up-e2e, amount: "5.00"}]
`, ns))
	eventually(t, "traffic resumes after the top-up", 60*time.Second, func() error {
		_, err := chat(url, acme, "gpt-4o-mini", 20)
		return err
	})

	// A config change under load: not one request fails.
	globex := tenantKey(t, ns, "globex")
	var failed, done atomic.Int64
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Go(func() {
			for range jobs {
				if _, err := chat(url, globex, "gpt-4o-mini", 20); err != nil {
					failed.Add(1)
				}
				done.Add(1)
			}
		})
	}
	go func() {
		for i := range 400 {
			jobs <- i
		}
		close(jobs)
	}()
	for i := range 5 {
		kubectl(t, "patch", "airoute", "chat", "-n", ns, "--type=json", "-p", fmt.Sprintf(`[{"op":"replace","path":"/spec/rules/0/timeout","value":"%ds"}]`, 60+i))
		time.Sleep(150 * time.Millisecond)
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during config changes", failed.Load(), done.Load())
	}

	// Break the provider's Secret: the conditions say so.
	kubectl(t, "delete", "secret", "openai-credentials", "-n", ns)
	kubectl(t, "wait", "--for=condition=ResolvedRefs=false", "modelprovider/openai", "-n", ns, "--timeout=60s")
	out := kubectl(t, "get", "modelprovider", "openai", "-n", ns, "-o", "jsonpath={.status.conditions[?(@.type==\"ResolvedRefs\")].reason}")
	if out != "SecretNotFound" {
		t.Fatalf("ResolvedRefs reason %q", out)
	}
}

// TestSharedRedisLedger runs two proxy processes for one Gateway on a
// shared Redis ledger: together they never spend more than the balance.
func TestSharedRedisLedger(t *testing.T) {
	const ns = "e2e-redis"
	addr := testredis.Start(t)
	urls := deploy(t, ns, 2, func(u *unstructured.Unstructured) {
		if u.GetKind() == "ProxyConfig" {
			_ = unstructured.SetNestedField(u.Object, int64(2), "spec", "replicas")
			_ = unstructured.SetNestedMap(u.Object, map[string]any{"type": "Redis", "redis": map[string]any{"address": addr}}, "spec", "ledger")
		}
	})
	acme := tenantKey(t, ns, "acme")
	var mu sync.Mutex
	var spent money.Micros
	served := map[string]int{}
	var refusals atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			url := urls[i%2]
			resp, err := chat(url, acme, "gpt-4o-mini", 1000)
			switch status(err) {
			case 200:
				c, _ := money.Parse(resp.Header.Get(proxy.HeaderCost))
				mu.Lock()
				spent += c
				served[url]++
				mu.Unlock()
			case 402:
				refusals.Add(1)
			default:
				t.Errorf("%s: %v", url, err)
			}
		})
	}
	wg.Wait()
	t.Logf("served %v, %d refused with the declared 402, spent %s of the 0.01 credit", served, refusals.Load(), spent)
	if spent > money.MustParse("0.01") || refusals.Load() == 0 || len(served) != 2 {
		t.Fatalf("two proxies on one Redis ledger: spent %s of 0.01, %d refused, served by %d proxies", spent, refusals.Load(), len(served))
	}
}

// TestInClusterProxy runs a proxy the way its Deployment does: the
// in-cluster config, with a token of the ServiceAccount the manager renders
// for the Gateway, so with the Role the manager renders and nothing more.
// It loads its config, heartbeats (Programmed), serves, and writes usage.
func TestInClusterProxy(t *testing.T) {
	if out, err := exec.Command("unshare", "--mount", "true").CombinedOutput(); err != nil {
		t.Skipf("a private mount namespace is needed for the service account path (run as root): %v %s", err, out)
	}
	const ns = "incluster"
	if err := stack.Samples(ctx(t), ns, devstack.External(fake.URL()+"/v1", fakeprovider.OpenAIKey)); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(stack.Env.Config)
	if err != nil {
		t.Fatal(err)
	}
	// A token as the kubelet would mount it, for the ServiceAccount the manager renders.
	var token string
	eventually(t, "a token of the proxy's ServiceAccount", 60*time.Second, func() error {
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx(t), dataplane.Name("ai-gateway", ""),
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
		if err == nil {
			token = tr.Status.Token
		}
		return err
	})
	addr := freeAddr(t)
	if _, err := stack.InClusterProxy(ns+"/ai-gateway", addr, ns+"-0", token); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "wait", "--for=condition=Programmed", "gateway/ai-gateway", "-n", ns, "--timeout=120s")
	if _, err := chat("http://"+addr, tenantKey(t, ns, "acme"), "gpt-4o-mini", 50); err != nil {
		t.Fatalf("a request through the in-cluster proxy: %v (log: %s)", err, stack.Log("proxy-"+ns+"-0"))
	}
	eventually(t, "the in-cluster proxy's usage in the Tenant's status", 60*time.Second, func() error {
		if got := kubectl(t, "get", "tenant", "acme", "-n", ns, "-o", "jsonpath={.status.usage.requests}"); got != "1" {
			return fmt.Errorf("requests %q, want 1", got)
		}
		return nil
	})
}
