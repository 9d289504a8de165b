package controller

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/source"
)

// TestProxyProgramsGateway runs a proxy out of cluster against the manager:
// it loads the config the manager rendered through the API, its heartbeat
// makes the Gateway Programmed, a change reaches it, and a stopped proxy
// stops counting.
func TestProxyProgramsGateway(t *testing.T) {
	ns := applySamples(t)
	cs, err := source.NewClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.New(proxy.Options{})
	pctx, stop := context.WithCancel(context.Background())
	defer stop()
	log := slog.New(slog.DiscardHandler)
	source.Kube(pctx, cs, ns, "ai-gateway", srv, log)
	beats := make(chan struct{})
	go func() {
		source.Heartbeat(pctx, cs, ns, "ai-gateway", "proxy-0", srv.Hash, 200*time.Millisecond, log)
		close(beats)
	}()

	eventually(t, "the proxy serves the rendered config and the Gateway is Programmed", func() error {
		cfg, err := proxyConfig(t, ns, "ai-gateway")
		if err != nil {
			return err
		}
		if srv.Hash() != cfg.Hash {
			return fmt.Errorf("proxy serves %q, manager rendered %q", srv.Hash(), cfg.Hash)
		}
		gw, _ := get(t, ns, "ai-gateway", &gwapiv1.Gateway{})
		return wantCondition(gw.Status.Conditions, "Programmed", "True", "Programmed", gw.Generation)
	})

	// A top-up in git reaches the proxy: a new credit, a new hash, served and reported.
	change(t, ns, "acme", &v1.Tenant{}, func(tn *v1.Tenant) {
		tn.Spec.Credits = append(tn.Spec.Credits, v1.CreditGrant{ID: "top-up-1", Amount: "5.00"})
	})
	eventually(t, "the change is served and Programmed again", func() error {
		c := srv.Config()
		if c == nil || len(c.Tenants) == 0 {
			return fmt.Errorf("no config")
		}
		for _, tenant := range c.Tenants {
			if tenant.Name == ns+"/acme" && len(tenant.Credits) == 2 {
				gw, _ := get(t, ns, "ai-gateway", &gwapiv1.Gateway{})
				return wantCondition(gw.Status.Conditions, "Programmed", "True", "Programmed", gw.Generation)
			}
		}
		return fmt.Errorf("the proxy does not serve the top-up yet (%s)", c.Hash)
	})

	stop()
	<-beats
	eventually(t, "a stopped proxy deletes its Lease", func() error {
		l := &coordinationv1.Lease{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: dataplane.Name("ai-gateway", "-proxy-0")}, l); err == nil {
			return fmt.Errorf("lease still there")
		}
		gw, _ := get(t, ns, "ai-gateway", &gwapiv1.Gateway{})
		return wantCondition(gw.Status.Conditions, "Programmed", "False", "Pending", gw.Generation)
	})
}
