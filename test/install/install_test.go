// Package install checks that the ways to install Tollgate produce objects
// the API server accepts: the Helm chart (helm lint, then helm template
// applied as a server-side dry run) and the kustomize tree behind
// `kubectl apply -k config/default` and `make build-installer`.
package install

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	return m.Run()
}

func tool(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(testenv.RepoRoot(), "hack", script)).Output()
	if err != nil {
		t.Fatalf("hack/%s: %v", script, err)
	}
	return strings.TrimSpace(string(out))
}

// runIn runs a command in the repository and returns its output.
func runIn(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = testenv.RepoRoot()
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func kubectl(t *testing.T) func(stdin string, args ...string) string {
	t.Helper()
	kubeconfig, err := env.Kubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tool(t, "envtest-assets.sh"), "kubectl")
	return func(stdin string, args ...string) string {
		t.Helper()
		return runIn(t, stdin, bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
}

func namespace(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// wantApplied checks that a dry-run apply accepted each of the objects.
func wantApplied(t *testing.T, out string, objects ...string) {
	t.Helper()
	for _, o := range objects {
		if !strings.Contains(out, o+" serverside-applied (server dry run)") {
			t.Errorf("the API server did not accept %s:\n%s", o, out)
		}
	}
}

func TestHelmChart(t *testing.T) {
	helm := tool(t, "helm.sh")
	chart := filepath.Join(testenv.RepoRoot(), "charts", "tollgate")
	if out := runIn(t, "", helm, "lint", "--strict", chart); !strings.Contains(out, "0 chart(s) failed") {
		t.Fatalf("helm lint:\n%s", out)
	}
	namespace(t, "tollgate-system")
	k := kubectl(t)
	for name, values := range map[string][]string{
		"defaults":                      nil,
		"two replicas, no GatewayClass": {"--set", "replicas=2", "--set", "gatewayClass.create=false"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"template", "tollgate", chart, "--namespace", "tollgate-system", "--include-crds"}, values...)
			rendered := runIn(t, "", helm, args...)
			for _, want := range []string{"runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false", "drop:\n              - ALL"} {
				if !strings.Contains(rendered, want) {
					t.Errorf("the chart lacks %q", want)
				}
			}
			out := k(rendered, "apply", "--server-side", "--dry-run=server", "-f", "-")
			wantApplied(t, out, "deployment.apps/tollgate-tollgate", "clusterrole.rbac.authorization.k8s.io/tollgate-tollgate-manager",
				"serviceaccount/tollgate-tollgate", "customresourcedefinition.apiextensions.k8s.io/tenants.tollgate.dev")
		})
	}
}

func TestKustomizeAndInstaller(t *testing.T) {
	namespace(t, "tollgate-system")
	k := kubectl(t)
	built := k("", "kustomize", "config/default")
	for name, manifests := range map[string]string{"config/default": built} {
		t.Run(name, func(t *testing.T) {
			out := k(manifests, "apply", "--server-side", "--dry-run=server", "-f", "-")
			wantApplied(t, out, "deployment.apps/tollgate-controller-manager", "clusterrole.rbac.authorization.k8s.io/tollgate-manager-role",
				"customresourcedefinition.apiextensions.k8s.io/paymentpolicies.tollgate.dev", "service/tollgate-controller-manager-metrics-service")
		})
	}
	// make build-installer writes exactly this build.
	dir := t.TempDir()
	installer := filepath.Join(dir, "install.yaml")
	if err := os.WriteFile(installer, []byte(built), 0o600); err != nil {
		t.Fatal(err)
	}
	wantApplied(t, k("", "apply", "--server-side", "--dry-run=server", "-f", installer), "deployment.apps/tollgate-controller-manager")
}
