package render

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// golden is one rendering case: Input in YAML, with the config as it is
// written to the ConfigMap.
type golden struct {
	Input  Input            `json:"input"`
	Config dataplane.Config `json:"config"`
}

func TestGolden(t *testing.T) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if len(inputs) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, path := range inputs {
		name := strings.TrimSuffix(filepath.Base(path), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var g golden
			if err := yaml.UnmarshalStrict(data, &g); err != nil {
				t.Fatal(err)
			}
			in := g.Input
			in.Config = &g.Config
			if in.ConfigJSON, err = dataplane.Encode(in.Config); err != nil {
				t.Fatal(err)
			}
			o := Render(in)
			var docs []string
			for _, obj := range []any{o.ServiceAccount, o.Role, o.RoleBinding, o.ConfigMap, o.Secret, o.PVC, o.Deployment, o.Service} {
				if obj == nil || isNil(obj) {
					continue
				}
				out, err := yaml.Marshal(obj)
				if err != nil {
					t.Fatal(err)
				}
				docs = append(docs, string(out))
			}
			got := strings.Join(docs, "---\n")
			want := strings.TrimSuffix(path, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/render -update)", err)
			}
			if diff := cmp.Diff(string(w), got); diff != "" {
				t.Errorf("%s differs (-want +got); if intended, run go test ./internal/render -update\n%s", want, diff)
			}
		})
	}
}

func isNil(obj any) bool {
	b, _ := yaml.Marshal(obj)
	return string(b) == "null\n"
}

func TestNameStaysADNSLabel(t *testing.T) {
	long := strings.Repeat("g", 80)
	a, b := dataplane.Name(long, ""), dataplane.Name(long, "-credentials")
	if len(a) > 63 || len(b) > 63 || a == b {
		t.Fatalf("names %q (%d) and %q (%d)", a, len(a), b, len(b))
	}
	if dataplane.Name("ai", "") != "tollgate-ai" {
		t.Fatalf("short names are kept: %q", dataplane.Name("ai", ""))
	}
}
