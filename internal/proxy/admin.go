package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler serves the admin port, apart from traffic: /healthz (the
// process is up), /readyz (a config is loaded), /metrics and /configz
// (which config is served, never its secrets).
// With profiling, it also serves Go's /debug/pprof endpoints.
func (s *Server) AdminHandler(g prometheus.Gatherer, profiling bool) http.Handler {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.Config() == nil {
			http.Error(w, "no config loaded yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /configz", func(w http.ResponseWriter, _ *http.Request) {
		cfg := s.Config()
		if cfg == nil {
			http.Error(w, "no config loaded yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"gateway": cfg.Gateway, "hash": cfg.Hash, "schemaVersion": cfg.SchemaVersion, "sources": cfg.Sources})
	})
	return mux
}

// Hash is the hash of the config being served, empty before the first load.
func (s *Server) Hash() string {
	if c := s.Config(); c != nil {
		return c.Hash
	}
	return ""
}
