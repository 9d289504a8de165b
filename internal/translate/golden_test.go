package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// goldenNow is the clock of every golden snapshot.
var goldenNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// currentHash in a heartbeat Lease stands for the hash the translation produces.
const currentHash = "CURRENT"

// objects is a decoded testdata input.
type objects struct {
	classes   []*gwapiv1.GatewayClass
	gateways  []*gwapiv1.Gateway
	configs   []*v1.ProxyConfig
	routes    []*v1.AIRoute
	providers []*v1.ModelProvider
	tenants   []*v1.Tenant
	policies  []*v1.PaymentPolicy
	secrets   []*corev1.Secret
	leases    []*coordinationv1.Lease
}

func decode(t *testing.T, path string) objects {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var o objects
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			continue
		}
		var meta struct{ Kind string }
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatal(err)
		}
		into := func(dst any) {
			if err := json.Unmarshal(raw, dst); err != nil {
				t.Fatalf("%s: %v", meta.Kind, err)
			}
		}
		switch meta.Kind {
		case "GatewayClass":
			x := &gwapiv1.GatewayClass{}
			into(x)
			o.classes = append(o.classes, x)
		case "Gateway":
			x := &gwapiv1.Gateway{}
			into(x)
			o.gateways = append(o.gateways, x)
		case "ProxyConfig":
			x := &v1.ProxyConfig{}
			into(x)
			o.configs = append(o.configs, x)
		case "AIRoute":
			x := &v1.AIRoute{}
			into(x)
			o.routes = append(o.routes, x)
		case "ModelProvider":
			x := &v1.ModelProvider{}
			into(x)
			o.providers = append(o.providers, x)
		case "Tenant":
			x := &v1.Tenant{}
			into(x)
			o.tenants = append(o.tenants, x)
		case "PaymentPolicy":
			x := &v1.PaymentPolicy{}
			into(x)
			o.policies = append(o.policies, x)
		case "Secret":
			x := &corev1.Secret{}
			into(x)
			for k, v := range x.StringData {
				if x.Data == nil {
					x.Data = map[string][]byte{}
				}
				x.Data[k] = []byte(v)
			}
			o.secrets = append(o.secrets, x)
		case "Lease":
			x := &coordinationv1.Lease{}
			into(x)
			o.leases = append(o.leases, x)
		default:
			t.Fatalf("unknown kind %q", meta.Kind)
		}
	}
	return o
}

func index[T interface {
	GetNamespace() string
	GetName() string
}](items []T) map[string]T {
	m := map[string]T{}
	for _, x := range items {
		m[key(x.GetNamespace(), x.GetName())] = x
	}
	return m
}

// snapshot gathers the inputs of one Gateway the way the controller does.
func (o objects) snapshot(gw *gwapiv1.Gateway) *Snapshot {
	s := &Snapshot{Now: goldenNow, Gateway: gw, Providers: index(o.providers), Tenants: map[string]*v1.Tenant{}, Secrets: index(o.secrets)}
	for _, c := range o.classes {
		if string(gw.Spec.GatewayClassName) == c.Name {
			s.Class = c
		}
	}
	configs := index(o.configs)
	if ref := gw.Spec.Infrastructure; ref != nil && ref.ParametersRef != nil {
		k := key(gw.Namespace, ref.ParametersRef.Name)
		if s.ProxyConfig = configs[k]; s.ProxyConfig == nil {
			s.MissingProxyConfig = k
		}
	}
	namespaces := map[string]bool{gw.Namespace: true}
	for _, r := range o.routes {
		for _, ref := range r.Spec.ParentRefs {
			if k, ok := ParentKey(r.Namespace, ref); ok && k == (types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}) {
				s.Routes = append(s.Routes, r)
				namespaces[r.Namespace] = true
				break
			}
		}
	}
	for _, t := range o.tenants {
		if namespaces[t.Namespace] {
			s.Tenants[key(t.Namespace, t.Name)] = t
		}
	}
	for _, p := range o.policies {
		if namespaces[p.Namespace] {
			s.Policies = append(s.Policies, p)
		}
	}
	return s
}

func (o objects) heartbeats(gw *gwapiv1.Gateway, hash string) []Heartbeat {
	var out []Heartbeat
	for _, l := range o.leases {
		if l.Labels["tollgate.dev/gateway"] != gw.Name || l.Namespace != gw.Namespace {
			continue
		}
		h := l.Annotations["tollgate.dev/config-hash"]
		if h == currentHash {
			h = hash
		}
		out = append(out, Heartbeat{Holder: *l.Spec.HolderIdentity, Hash: h,
			Expires: l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)})
	}
	return out
}

// output is what a golden file pins.
type output struct {
	Gateways       map[string]gatewayOut                  `json:"gateways,omitempty"`
	GatewayClasses map[string]any                         `json:"gatewayClasses,omitempty"`
	ProxyConfigs   map[string]any                         `json:"proxyConfigs,omitempty"`
	Providers      map[string]any                         `json:"modelProviders,omitempty"`
	Routes         map[string][]gwapiv1.RouteParentStatus `json:"aiRoutes,omitempty"`
	Tenants        map[string]v1.TenantStatus             `json:"tenants,omitempty"`
	Policies       map[string]any                         `json:"paymentPolicies,omitempty"`
}

type gatewayOut struct {
	Conditions     any                      `json:"conditions"`
	Listeners      []gwapiv1.ListenerStatus `json:"listeners"`
	CredentialKeys []string                 `json:"credentialKeys,omitempty"`
	RequeueAfter   string                   `json:"requeueAfter,omitempty"`
	Config         *dataplane.Config        `json:"config,omitempty"`
}

func translateAll(t *testing.T, o objects) output {
	out := output{Gateways: map[string]gatewayOut{}, GatewayClasses: map[string]any{}, ProxyConfigs: map[string]any{}, Providers: map[string]any{},
		Routes: map[string][]gwapiv1.RouteParentStatus{}, Tenants: map[string]v1.TenantStatus{}, Policies: map[string]any{}}
	configs := index(o.configs)
	for _, c := range o.classes {
		if c.Spec.ControllerName == v1.ControllerName {
			ns, name, _ := ClassProxyConfig(c)
			out.GatewayClasses[c.Name] = ClassConditions(c, configs[key(ns, name)])
		}
	}
	ours := map[string]bool{}
	for _, c := range o.classes {
		ours[c.Name] = c.Spec.ControllerName == v1.ControllerName
	}
	parents := map[types.NamespacedName]Parent{}
	for _, gw := range o.gateways {
		parents[types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}] = Parent{Gateway: gw, Ours: ours[string(gw.Spec.GatewayClassName)]}
		if !ours[string(gw.Spec.GatewayClassName)] {
			continue
		}
		s := o.snapshot(gw)
		res := Gateway(s)
		if res.Config != nil && len(o.heartbeats(gw, res.Config.Hash)) > 0 {
			s.Heartbeats = o.heartbeats(gw, res.Config.Hash)
			res = Gateway(s)
		}
		g := gatewayOut{Conditions: res.Conditions, Listeners: res.Listeners, Config: res.Config}
		for k := range res.Credentials {
			g.CredentialKeys = append(g.CredentialKeys, k)
		}
		slices.Sort(g.CredentialKeys)
		if res.RequeueAfter > 0 {
			g.RequeueAfter = res.RequeueAfter.String()
		}
		out.Gateways[key(gw.Namespace, gw.Name)] = g
	}
	for _, pc := range o.configs {
		out.ProxyConfigs[key(pc.Namespace, pc.Name)] = ProxyConfigConditions(pc)
	}
	secrets := index(o.secrets)
	providers := index(o.providers)
	for _, mp := range o.providers {
		out.Providers[key(mp.Namespace, mp.Name)] = ProviderConditions(mp, secrets[key(mp.Namespace, authSecret(mp))])
	}
	for _, r := range o.routes {
		out.Routes[key(r.Namespace, r.Name)] = RouteParents(r, parents, providers)
	}
	routes := index(o.routes)
	for _, tn := range o.tenants {
		out.Tenants[key(tn.Namespace, tn.Name)] = TenantStatus(tn, secrets, routes)
	}
	gateways := map[string]*gwapiv1.Gateway{}
	for _, gw := range o.gateways {
		gateways[key(gw.Namespace, gw.Name)] = gw
	}
	in := PolicyInputs{Tenants: index(o.tenants), Routes: routes, Gateways: gateways, Secrets: secrets, Policies: o.policies}
	for _, p := range o.policies {
		out.Policies[key(p.Namespace, p.Name)] = PolicyConditions(p, in)
	}
	return out
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			got, err := yaml.Marshal(translateAll(t, decode(t, in)))
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/translate -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got); if the change is intended, run go test ./internal/translate -update\n%s", golden, diff)
			}
		})
	}
}
