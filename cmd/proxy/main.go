// Command proxy is Tollgate's data plane. It runs three ways: in a cluster
// (--gateway ns/name, config from its ConfigMap and Secret through the API),
// out of cluster (the same, with --kubeconfig), or standalone (--config
// file.json, watched on disk).
package main

import (
	_ "time/tzdata" // budget windows need time zones even in a minimal image

	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/payment"
	"github.com/tollgate-dev/tollgate/internal/proxy/source"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		configPath  = flag.String("config", "", "Standalone: a config file (JSON) to serve and watch.")
		credsPath   = flag.String("credentials", "", "Standalone: a JSON file of credential key to value.")
		gateway     = flag.String("gateway", "", "The Gateway to serve, as namespace/name; its config is read through the API.")
		kubeconfig  = flag.String("kubeconfig", "", "Out of cluster: the kubeconfig to reach the API with.")
		adminAddr   = flag.String("admin-address", ":9901", "Address of the admin port: /healthz, /readyz, /metrics, /configz.")
		listenAddr  = flag.String("listen-address", "", "Serve traffic here instead of on the config's listener ports (for one local proxy).")
		holder      = flag.String("holder", "", "Name of this proxy in its heartbeat Lease (defaults to $POD_NAME, then the host name).")
		ledgerDir   = flag.String("ledger-dir", "/var/lib/tollgate", "Directory of the Embedded ledger file.")
		logLevel    = flag.String("log-level", "info", "Log level: debug, info, warn or error.")
		profiling   = flag.Bool("profiling", false, "Serve Go's /debug/pprof on the admin port.")
		gracePeriod = flag.Duration("shutdown-grace", 25*time.Second, "How long in-flight requests may take to finish on shutdown.")
	)
	flag.Parse()
	// The live heap of a proxy is small and its garbage is per request: the
	// default GOGC=100 collects every few hundred requests, and a request
	// that overlaps a collection is the latency tail. 400 collects a quarter
	// as often for a few more MB of heap. GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	enforcer := payment.New(payment.OpenLedger(*ledgerDir, log), nil, log)
	defer func() { _ = enforcer.Close() }()
	srv := proxy.New(proxy.Options{Logger: log, Metrics: proxy.NewMetrics(reg), Admitter: enforcer})

	switch {
	case *configPath != "":
		if err := source.Files(ctx, *configPath, *credsPath, srv, log, time.Second); err != nil {
			return err
		}
	case *gateway != "":
		ns, name, err := source.ParseGateway(*gateway)
		if err != nil {
			return err
		}
		cs, err := client(*kubeconfig)
		if err != nil {
			return err
		}
		source.Kube(ctx, cs, ns, name, srv, log)
		go source.Heartbeat(ctx, cs, ns, name, holderName(*holder), srv.Hash, 10*time.Second, log)
		go source.Usage(ctx, cs, ns, name, func(c context.Context) (*dataplane.UsageReport, error) { return enforcer.Report(c, *gateway) }, 10*time.Second, log)
	default:
		return errors.New("either --config (standalone) or --gateway namespace/name is required")
	}

	admin := &http.Server{Addr: *adminAddr, Handler: srv.AdminHandler(reg, *profiling), ReadHeaderTimeout: 10 * time.Second}
	go serve(log, admin, "admin")

	// Traffic listeners follow the first config loaded.
	servers, err := listeners(ctx, srv, *listenAddr)
	if err != nil {
		return err
	}
	for _, s := range servers {
		go serve(log, s, "traffic")
	}
	<-ctx.Done()
	log.Info("Shutting down", "grace", gracePeriod.String())
	done, cancel := context.WithTimeout(context.Background(), *gracePeriod)
	defer cancel()
	for _, s := range append(servers, admin) {
		_ = s.Shutdown(done)
	}
	return nil
}

// listeners waits for the first config and makes one server per listener.
func listeners(ctx context.Context, srv *proxy.Server, override string) ([]*http.Server, error) {
	for srv.Config() == nil {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	mk := func(addr string) *http.Server {
		// No write timeout: streams last as long as the model writes.
		return &http.Server{Addr: addr, Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	}
	if override != "" {
		return []*http.Server{mk(override)}, nil
	}
	var out []*http.Server
	for _, l := range srv.Config().Listeners {
		out = append(out, mk(net.JoinHostPort("", strconv.Itoa(int(l.Port)))))
	}
	return out, nil
}

func serve(log *slog.Logger, s *http.Server, what string) {
	log.Info("Serving", "what", what, "address", s.Addr)
	if err := s.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("Server stopped", "what", what, "address", s.Addr, "error", err)
		os.Exit(1)
	}
}

func client(kubeconfig string) (*source.Client, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	return source.NewClient(cfg)
}

func holderName(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := os.Getenv("POD_NAME"); p != "" {
		return p
	}
	h, _ := os.Hostname()
	return h
}
