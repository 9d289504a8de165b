package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus metrics.
type Metrics struct {
	requests        *prometheus.CounterVec
	tokens          *prometheus.CounterVec
	cost            *prometheus.CounterVec
	refusals        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	upstreamLatency *prometheus.HistogramVec
	upstreamCalls   *prometheus.CounterVec
	configInfo      *prometheus.GaugeVec
	reloads         *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_requests_total",
			Help: "Requests answered, by tenant, route, model, provider and status code."}, []string{"tenant", "route", "model", "provider", "code"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_tokens_total",
			Help: "Tokens metered, by tenant, model and kind (input, cached_input, output)."}, []string{"tenant", "model", "kind"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_cost_micros_total",
			Help: "Cost charged, in micro-units of the currency, by tenant and currency."}, []string{"tenant", "currency"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_refusals_total",
			Help: "Requests refused by admission (402 payment required, 503 ledger unavailable), by tenant and code."}, []string{"tenant", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tollgate_request_duration_seconds",
			Help: "Time from request to last byte, by route.", Buckets: buckets}, []string{"route"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tollgate_upstream_duration_seconds",
			Help: "Time to the upstream's response headers, by provider.", Buckets: buckets}, []string{"provider"}),
		upstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_upstream_requests_total",
			Help: "Upstream calls, retries included, by provider and status code (error when unreachable)."}, []string{"provider", "code"}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tollgate_config_info",
			Help: "1 for the hash of the config being served."}, []string{"hash"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_config_reloads_total",
			Help: "Config loads, by result (success, failure)."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.tokens, m.cost, m.refusals, m.latency, m.upstreamLatency, m.upstreamCalls, m.configInfo, m.reloads)
	}
	return m
}

func (m *Metrics) observe(x *exchange, latency time.Duration) {
	providerName, model := "", x.Model
	if x.served != nil {
		providerName, model = x.served.Provider, x.served.Model
	}
	m.requests.WithLabelValues(x.Tenant, x.Route, model, providerName, strconv.Itoa(x.status)).Inc()
	m.latency.WithLabelValues(x.Route).Observe(latency.Seconds())
	if x.served == nil {
		return
	}
	if fresh := x.usage.InputTokens - x.usage.CachedInputTokens; fresh > 0 {
		m.tokens.WithLabelValues(x.Tenant, model, "input").Add(float64(fresh))
	}
	if x.usage.CachedInputTokens > 0 {
		m.tokens.WithLabelValues(x.Tenant, model, "cached_input").Add(float64(x.usage.CachedInputTokens))
	}
	if x.usage.OutputTokens > 0 {
		m.tokens.WithLabelValues(x.Tenant, model, "output").Add(float64(x.usage.OutputTokens))
	}
	if x.receipt.Cost > 0 {
		m.cost.WithLabelValues(x.Tenant, x.receipt.Currency).Add(float64(x.receipt.Cost))
	}
}

func (m *Metrics) upstream(provider string, resp *http.Response, d time.Duration) {
	code := "error"
	if resp != nil {
		code = strconv.Itoa(resp.StatusCode)
		m.upstreamLatency.WithLabelValues(provider).Observe(d.Seconds())
	}
	m.upstreamCalls.WithLabelValues(provider, code).Inc()
}

func (m *Metrics) refused(tenant string, status int) {
	m.refusals.WithLabelValues(tenant, strconv.Itoa(status)).Inc()
}

func (m *Metrics) reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.reloads.WithLabelValues("failure").Inc()
	}
}

// dropConfig moves the config_info gauge from the old hash to the new one.
func (m *Metrics) dropConfig(prev, cur string) {
	if prev != "" && prev != cur {
		m.configInfo.DeleteLabelValues(prev)
	}
	m.configInfo.WithLabelValues(cur).Set(1)
}
