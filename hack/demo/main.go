// Command demo runs the whole product on one machine, with no cluster and
// no Docker: a real kube-apiserver and etcd with the Tollgate and Gateway API
// CRDs, the manager and a proxy as processes (ProxyConfig deployment:
// External), a local fake OpenAI-compatible provider (or the real OpenAI
// when OPENAI_API_KEY is set), and the samples applied. It then plays the
// story once (the sample tenant gets 200s until its prepaid credit is spent
// and the declared 402 comes back; kubectl shows the spend), prints how to
// call it yourself, and runs until interrupted (or exits, with
// DEMO_ONCE=1), then stops everything it started.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/tollgate-dev/tollgate/internal/devstack"
	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
)

const namespace = "demo"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...) }

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	port := os.Getenv("DEMO_PORT")
	if port == "" {
		port = "8080"
	}
	dir, err := os.MkdirTemp("", "tollgate-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("building the binaries, starting kube-apiserver and etcd (built from Go modules on first use: minutes, once) and the manager")
	stack, err := devstack.Start(dir)
	if err != nil {
		return err
	}
	defer stack.Stop()

	baseURL, providerKey := "https://api.openai.com/v1", os.Getenv("OPENAI_API_KEY")
	if providerKey == "" {
		step("starting a fake OpenAI-compatible provider on 127.0.0.1 (set OPENAI_API_KEY to use OpenAI)")
		fake, err := fakeprovider.Start(fakeprovider.Options{ReplyWords: 200})
		if err != nil {
			return err
		}
		defer fake.Close()
		baseURL, providerKey = fake.URL()+"/v1", fakeprovider.OpenAIKey
	}

	step("applying config/samples to namespace %s", namespace)
	if err := stack.Samples(ctx, namespace, devstack.External(baseURL, providerKey)); err != nil {
		return err
	}

	step("starting the proxy for Gateway %s/ai-gateway on 127.0.0.1:%s", namespace, port)
	if _, err := stack.Proxy(namespace+"/ai-gateway", "127.0.0.1:"+port, "demo-proxy"); err != nil {
		return err
	}

	step("waiting for the Gateway to be Programmed")
	key, err := waitReady(ctx, stack.Env.Client, "127.0.0.1:"+port)
	if err != nil {
		return fmt.Errorf("%w (logs: %s, %s)", err, stack.Log("manager"), stack.Log("proxy-demo-proxy"))
	}
	if err := story(ctx, "http://127.0.0.1:"+port, key, stack); err != nil {
		return fmt.Errorf("%w (logs: %s, %s)", err, stack.Log("manager"), stack.Log("proxy-demo-proxy"))
	}
	printUsage(port, key, stack.Kubeconfig, stack.Kubectl)
	if os.Getenv("DEMO_ONCE") == "" {
		<-ctx.Done()
	}
	step("stopping everything the demo started")
	return nil
}

// waitReady waits until the Gateway is Programmed and the proxy answers,
// and returns the demo tenant's generated key.
func waitReady(ctx context.Context, c client.Client, addr string) (string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		gw := &gwapiv1.Gateway{}
		s := &corev1.Secret{}
		if c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "ai-gateway"}, gw) == nil &&
			meta.IsStatusConditionTrue(gw.Status.Conditions, "Programmed") &&
			c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "acme-api-key"}, s) == nil {
			if conn, err := net.Dial("tcp", addr); err == nil {
				conn.Close()
				return string(s.Data["api-key"]), nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", errors.New("the Gateway did not become Programmed within 2 minutes")
}

// story sends the sample tenant's requests until its credit runs out and
// shows what the tenant and the operator see.
func story(ctx context.Context, url, key string, stack *devstack.Stack) error {
	call := func(maxTokens int) (*http.Response, []byte, error) {
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","max_tokens":%d,"messages":[{"role":"user","content":"Say hello from the tollgate."}]}`, maxTokens)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	step("a chat completion as the sample tenant acme")
	resp, _, err := call(50)
	if err != nil {
		return err
	}
	fmt.Printf("HTTP %d, X-Tollgate-Cost: %s %s, X-Tollgate-Remaining: %s\n", resp.StatusCode,
		resp.Header.Get("X-Tollgate-Cost"), resp.Header.Get("X-Tollgate-Currency"), resp.Header.Get("X-Tollgate-Remaining"))

	step("spending acme's small prepaid credit until the declared 402 comes back")
	for i := 2; i <= 1000; i++ {
		resp, body, err := call(1000)
		if err != nil {
			return err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			continue
		case http.StatusPaymentRequired:
			fmt.Printf("requests 1 to %d: HTTP 200; request %d: HTTP 402\n%s\n", i-1, i, body)
		default:
			return fmt.Errorf("request %d: HTTP %d: %s", i, resp.StatusCode, body)
		}
		break
	}

	step("the spend, as kubectl shows it (written to status within 30 s)")
	deadline := time.Now().Add(45 * time.Second)
	for {
		out, err := exec.CommandContext(ctx, stack.Kubectl, "--kubeconfig", stack.Kubeconfig, "get", "tenants", "-n", namespace, "acme",
			"-o", "jsonpath={.status.usage.requests}").Output()
		if err == nil && len(out) > 0 && string(out) != "0" {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the tenant's usage did not reach its status in 45 seconds")
		}
		time.Sleep(time.Second)
	}
	out, err := exec.CommandContext(ctx, stack.Kubectl, "--kubeconfig", stack.Kubeconfig, "get", "tollgate", "-A").CombinedOutput()
	fmt.Printf("$ kubectl get tollgate -A\n%s", out)
	return err
}

func printUsage(port, key, kubeconfig, kubectl string) {
	url := "http://127.0.0.1:" + port
	chat := func(maxTokens int) string {
		return fmt.Sprintf(`curl -s $TOLLGATE_URL/v1/chat/completions -H "Authorization: Bearer $TOLLGATE_KEY" -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","max_tokens":%d,"messages":[{"role":"user","content":"Say hello from the tollgate."}]}'`, maxTokens)
	}
	fmt.Println()
	fmt.Println("TOLLGATE_URL=" + url)
	fmt.Println("TOLLGATE_KEY=" + key)
	fmt.Println("KUBECONFIG=" + kubeconfig)
	fmt.Printf(`
# Paste these into another shell:
export TOLLGATE_URL=%s TOLLGATE_KEY=%s KUBECONFIG=%s
alias kubectl=%s

# 1. A chat completion that succeeds (see the cost and remaining balance headers):
%s -D - | grep -iE '^(HTTP|x-tollgate|x-request-id)'

# 2. Spend acme's small prepaid credit until the declared 402 comes back
#    (it is spent already: top up with 4 to see 200s again):
for i in $(seq 1 500); do code=$(%s -o /tmp/tollgate-402.json -w '%%{http_code}'); if [ "$code" = 402 ]; then echo "request $i: HTTP 402"; cat /tmp/tollgate-402.json; echo; break; fi; done

# 3. Everything Tollgate manages, with spend and remaining balance:
kubectl get tollgate -A

# 4. Top up, as a change in git would (server-side apply merges the credit by id):
kubectl apply --server-side --field-manager=billing -f - <<'YAML'
apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: acme, namespace: %s}
spec:
  credits:
    - {id: top-up-1, amount: "1.00"}
YAML
%s | head -c 300; echo

# Ctrl-C here stops the demo and everything it started.
`, url, key, kubeconfig, kubectl, chat(50), chat(1000), namespace, chat(50))
}
