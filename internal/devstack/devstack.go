// Package devstack runs the whole product as processes on one machine, with
// no cluster: a real kube-apiserver and etcd with the CRDs, the manager, and
// proxies run outside the cluster. make demo and the e2e tests use it.
package devstack

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// Stack is a running API server and manager.
type Stack struct {
	Dir        string
	Env        *testenv.Env
	Kubeconfig string
	Kubectl    string
	procs      []*exec.Cmd
}

// Start builds the binaries, starts the API server with the CRDs and runs the manager.
func Start(dir string) (*Stack, error) {
	if out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/manager", "./cmd/proxy").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	env, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	s := &Stack{Dir: dir, Env: env}
	if s.Kubeconfig, err = env.Kubeconfig(dir); err != nil {
		s.Stop()
		return nil, err
	}
	assets, err := testenv.Assets()
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Kubectl = filepath.Join(assets, "kubectl")
	if _, err := s.run("manager", filepath.Join(dir, "manager"), "--kubeconfig", s.Kubeconfig,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--proxy-image=ghcr.io/tollgate-dev/tollgate:dev"); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Proxy runs a proxy for a Gateway, out of cluster, serving on addr.
func (s *Stack) Proxy(gateway, addr, holder string) (*exec.Cmd, error) {
	return s.run("proxy-"+holder, filepath.Join(s.Dir, "proxy"), "--kubeconfig", s.Kubeconfig, "--gateway", gateway,
		"--listen-address", addr, "--admin-address", "127.0.0.1:0", "--ledger-dir", filepath.Join(s.Dir, "ledger-"+holder), "--holder", holder)
}

// InClusterProxy runs a proxy for a Gateway as a Pod would see the
// cluster: KUBERNETES_SERVICE_HOST and _PORT in its environment and a
// service account token and the API server's CA at the standard path, so
// that it takes the in-cluster path (rest.InClusterConfig) with nothing but
// that token's permissions. The path is made in a private mount namespace
// (unshare, root only): the machine's own /run is not touched.
func (s *Stack) InClusterProxy(gateway, addr, holder, token string) (*exec.Cmd, error) {
	host, err := url.Parse(s.Env.Config.Host)
	if err != nil {
		return nil, err
	}
	sa := filepath.Join(s.Dir, "sa-"+holder)
	if err := os.MkdirAll(sa, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(sa, "token"), []byte(token), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(sa, "ca.crt"), s.Env.Config.CAData, 0o600); err != nil {
		return nil, err
	}
	const mount = "/run/secrets/kubernetes.io/serviceaccount" // /var/run is /run
	script := `mount -t tmpfs tmpfs /run && mkdir -p ` + mount + ` && cp "$1/token" "$1/ca.crt" ` + mount + `/ && shift && exec "$@"`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", sa,
		filepath.Join(s.Dir, "proxy"), "--gateway", gateway, "--listen-address", addr, "--admin-address", "127.0.0.1:0",
		"--ledger-dir", filepath.Join(s.Dir, "ledger-"+holder))
	cmd.Env = append(os.Environ(), "KUBERNETES_SERVICE_HOST="+host.Hostname(), "KUBERNETES_SERVICE_PORT="+host.Port(), "POD_NAME="+holder)
	return s.start("proxy-"+holder, cmd)
}

// Samples creates config/samples in a namespace (the GatewayClass once),
// changing each object with edit first.
func (s *Stack) Samples(ctx context.Context, namespace string, edit func(*unstructured.Unstructured)) error {
	if err := s.Env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	objs, err := testenv.Samples()
	if err != nil {
		return err
	}
	for _, u := range objs {
		if u.GetKind() != "GatewayClass" {
			u.SetNamespace(namespace)
		}
		if edit != nil {
			edit(u)
		}
		if err := s.Env.Client.Create(ctx, u); err != nil && !(u.GetKind() == "GatewayClass" && apierrors.IsAlreadyExists(err)) {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// External points the samples at a provider and runs their proxies outside
// the cluster: the edit that make demo and the e2e tests apply.
func External(baseURL, providerKey string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		switch u.GetKind() {
		case "ProxyConfig":
			_ = unstructured.SetNestedField(u.Object, "External", "spec", "deployment")
		case "ModelProvider":
			_ = unstructured.SetNestedField(u.Object, baseURL, "spec", "baseURL")
		case "Secret":
			_ = unstructured.SetNestedField(u.Object, map[string]any{"api-key": providerKey}, "stringData")
		}
	}
}

func (s *Stack) run(name, bin string, args ...string) (*exec.Cmd, error) {
	return s.start(name, exec.Command(bin, args...))
}

// start starts cmd, logging to name.log, and stops it with the stack.
func (s *Stack) start(name string, cmd *exec.Cmd) (*exec.Cmd, error) {
	log, err := os.Create(filepath.Join(s.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.procs = append(s.procs, cmd)
	return cmd, nil
}

// Log is where a process of the stack writes its output.
func (s *Stack) Log(name string) string { return filepath.Join(s.Dir, name+".log") }

// Stop stops every process the stack started, then the API server.
func (s *Stack) Stop() {
	for _, p := range s.procs {
		Terminate(p)
	}
	if s.Env != nil {
		_ = s.Env.Stop()
	}
}

// Terminate asks a process to stop, and kills it after 5 seconds.
func Terminate(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
