// Package grafana checks the proxy's Grafana dashboard against the metrics
// the proxy exports. The exports are not listed by hand: a proxy.Server
// serves real requests on a fresh registry, so every metric has samples,
// and the registry's answer is what each panel query is checked against.
package grafana

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
)

const dashboardPath = "../../config/grafana/tollgate-proxy.json"

// The dashboard, as far as the checks read it.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": "..."}
	Datasource *datasourceRef  `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         *int           `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []target       `json:"targets"`
	Panels     []panel        `json:"panels"` // a collapsed row's panels
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

// The data source every panel and variable must use: the dashboard's own variable.
const datasourceUID = "${datasource}"

func loadDashboard(t *testing.T) ([]byte, dashboard) {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkJSON(raw); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return raw, d
}

// checkJSON checks that raw is one valid JSON value with no key twice in an
// object (encoding/json, like Grafana, would keep the last one silently).
func checkJSON(raw []byte) error {
	if !json.Valid(raw) {
		var v any
		return fmt.Errorf("not valid JSON: %v", json.Unmarshal(raw, &v))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := k.(string)
				if seen[key] {
					return fmt.Errorf("key %q twice in %s", key, path)
				}
				seen[key] = true
				if err := walk(path + "." + key); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk("$")
}

// allPanels lists the panels, those inside collapsed rows included.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

func (p panel) name() string {
	if p.ID == nil {
		return fmt.Sprintf("panel %q", p.Title)
	}
	return fmt.Sprintf("panel %d %q", *p.ID, p.Title)
}

func variableQuery(v variable) (string, error) {
	var s string
	if err := json.Unmarshal(v.Query, &s); err == nil {
		return s, nil
	}
	var o struct {
		Query string `json:"query"`
	}
	err := json.Unmarshal(v.Query, &o)
	return o.Query, err
}

// checkDashboard checks the dashboard's structure, variables and every panel
// query against ex. It returns the exported families the queries use.
func checkDashboard(d dashboard, ex exports) (usedFamilies map[string]bool, errs []error) {
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	usedFamilies = map[string]bool{}
	use := func(names []string) {
		for _, n := range names {
			if s, err := ex.lookup(n); err == nil {
				usedFamilies[s.family] = true
			}
		}
	}

	if d.SchemaVersion < 39 {
		bad("schemaVersion %d, want 39 or later", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		bad("the dashboard needs a uid and a title, so that imports update it in place")
	}

	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		if _, dup := vars[v.Name]; dup {
			bad("template variable %q twice", v.Name)
		}
		vars[v.Name] = v
	}
	if ds, ok := vars["datasource"]; !ok || ds.Type != "datasource" || string(ds.Query) != `"prometheus"` {
		bad("want a template variable datasource of type datasource that lists prometheus data sources, got %+v", ds)
	}
	for _, name := range []string{"tenant", "route"} {
		v, ok := vars[name]
		if !ok || v.Type != "query" {
			bad("want a query template variable %s", name)
			continue
		}
		if v.Datasource == nil || v.Datasource.UID != datasourceUID {
			bad("variable %s must query the data source ${datasource}, not %+v", name, v.Datasource)
		}
		q, err := variableQuery(v)
		if err != nil || !strings.HasPrefix(q, "label_values(") || !strings.HasSuffix(strings.ReplaceAll(q, " ", ""), ","+name+")") {
			bad("variable %s: query %q, want label_values(<selector>, %s)", name, q, name)
			continue
		}
		used, err := checkVariableQuery(q, ex)
		if err != nil {
			bad("variable %s: %v", name, err)
		}
		use(used)
	}

	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if p.ID == nil || *p.ID <= 0 {
			bad("%s has no id", p.name())
		} else if other, dup := ids[*p.ID]; dup {
			bad("%s has the id of panel %q", p.name(), other)
		} else {
			ids[*p.ID] = p.Title
		}
		if p.Type == "row" {
			if len(p.Targets) > 0 {
				bad("row %s has targets", p.name())
			}
			continue
		}
		if len(p.Targets) == 0 {
			bad("%s has no targets", p.name())
		}
		if p.Datasource == nil || p.Datasource.UID != datasourceUID {
			bad("%s must use the data source ${datasource}, not %+v", p.name(), p.Datasource)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				bad("%s: target refId %q is empty or not unique", p.name(), tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != datasourceUID {
				bad("%s target %s must use the data source ${datasource}, not %+v", p.name(), tg.RefID, tg.Datasource)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				bad("%s target %s has no expression", p.name(), tg.RefID)
				continue
			}
			used, err := checkExpr(tg.Expr, ex)
			if err != nil {
				bad("%s target %s: %s\n\t%v", p.name(), tg.RefID, tg.Expr, strings.ReplaceAll(err.Error(), "\n", "\n\t"))
			}
			use(used)
		}
	}
	return usedFamilies, errs
}

func TestDashboard(t *testing.T) {
	_, d := loadDashboard(t)
	ex := proxyExports(t)
	used, errs := checkDashboard(d, ex)
	for _, err := range errs {
		t.Error(err)
	}
	// The other way round: a metric the proxy exports and no panel shows
	// is a gap in the dashboard.
	for name := range ex {
		if !used[name] {
			t.Errorf("the proxy exports %s, but no panel or variable uses it", name)
		}
	}
}

// TestDashboardCheckFails breaks the real dashboard in the ways the checks
// exist for, and expects checkDashboard to report each.
func TestDashboardCheckFails(t *testing.T) {
	raw, _ := loadDashboard(t)
	ex := proxyExports(t)
	firstQuery := func(d *dashboard) *target {
		for i := range d.Panels {
			if len(d.Panels[i].Targets) > 0 {
				return &d.Panels[i].Targets[0]
			}
		}
		t.Fatal("no panel with a target")
		return nil
	}
	for _, tc := range []struct {
		name   string
		mutate func(d *dashboard)
		want   string
	}{
		{"metric the proxy does not export", func(d *dashboard) {
			firstQuery(d).Expr = `sum by (route) (rate(tollgate_http_requests_total[$__rate_interval]))`
		}, "tollgate_http_requests_total is not exported"},
		{"label the metric does not have", func(d *dashboard) {
			firstQuery(d).Expr = `sum by (gateway) (rate(tollgate_requests_total[$__rate_interval]))`
		}, `no label "gateway"`},
		{"panel without targets", func(d *dashboard) {
			for i := range d.Panels {
				if d.Panels[i].Type != "row" {
					d.Panels[i].Targets = nil
					return
				}
			}
		}, "has no targets"},
		{"two panels with one id", func(d *dashboard) { d.Panels[2].ID = d.Panels[1].ID }, "has the id of panel"},
		{"variable on a missing label", func(d *dashboard) {
			for i, v := range d.Templating.List {
				if v.Name == "route" {
					d.Templating.List[i].Query = json.RawMessage(`"label_values(tollgate_tokens_total, route)"`)
				}
			}
		}, `tollgate_tokens_total has no label "route"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d dashboard
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			tc.mutate(&d)
			_, errs := checkDashboard(d, ex)
			if err := errors.Join(errs...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	if err := checkJSON([]byte(`{"panels": [], "panels": []}`)); err == nil || !strings.Contains(err.Error(), `key "panels" twice`) {
		t.Errorf("a duplicate key: %v", err)
	}
	if err := checkJSON([]byte(`{"panels": [}`)); err == nil {
		t.Error("invalid JSON passed")
	}
}

// TestCheckExpr runs the checker on right and deliberately wrong queries.
func TestCheckExpr(t *testing.T) {
	ex := proxyExports(t)
	for _, tc := range []struct {
		expr string
		want string // an error containing this, or "" for none
		used string // for passing queries: the series used, comma-separated
	}{
		// Right.
		{expr: `sum by (route) (rate(tollgate_requests_total{tenant=~"$tenant", route=~"${route}"}[$__rate_interval]))`, used: "tollgate_requests_total"},
		{expr: `histogram_quantile(0.99, sum by (le, provider) (rate(tollgate_upstream_duration_seconds_bucket[$__rate_interval])))`, used: "tollgate_upstream_duration_seconds_bucket"},
		{expr: `sum(rate(tollgate_request_duration_seconds_sum[$__rate_interval])) / sum(rate(tollgate_request_duration_seconds_count[$__rate_interval]))`,
			used: "tollgate_request_duration_seconds_count,tollgate_request_duration_seconds_sum"},
		{expr: `sum by (tenant, currency) (increase(tollgate_cost_micros_total[$__range])) / 1e6`, used: "tollgate_cost_micros_total"},
		{expr: `sum without (model) (rate(tollgate_tokens_total{kind="cached_input"}[$__rate_interval]))`, used: "tollgate_tokens_total"},
		{expr: `sum by (tenant) (rate(tollgate_refusals_total{code="402"}[$__rate_interval])) / on (tenant) group_left sum by (tenant) (rate(tollgate_requests_total[$__rate_interval]))`,
			used: "tollgate_refusals_total,tollgate_requests_total"},
		{expr: `count by (hash) (tollgate_config_info) > bool 0`, used: "tollgate_config_info"},
		{expr: `{__name__="tollgate_config_info"} or vector(0)`, used: "tollgate_config_info"},
		{expr: "label_replace(sum by (code) (rate(tollgate_upstream_requests_total[$__rate_interval])), \"class\", \"${1}xx\", \"code\", \"(.).*\") # by class",
			used: "tollgate_upstream_requests_total"},
		{expr: `max_over_time(sum(rate(tollgate_requests_total[$__rate_interval]))[$__range:])`, used: "tollgate_requests_total"},
		{expr: `sum by (provider, code) (rate(tollgate_upstream_requests_total[$__rate_interval])) / ignoring (code) group_left sum by (provider) (rate(tollgate_upstream_requests_total[$__rate_interval]))`,
			used: "tollgate_upstream_requests_total"},
		{expr: `topk(5, sum by (tenant, model) (rate(tollgate_tokens_total{kind='output'}[$__rate_interval])))`, used: "tollgate_tokens_total"},

		// Metric names the proxy does not export.
		{expr: `sum(rate(tollgate_request_total[$__rate_interval]))`, want: "tollgate_request_total is not exported"},
		{expr: `rate(tollgate_requests_total_bucket[$__rate_interval])`, want: "tollgate_requests_total_bucket is not exported"},
		{expr: `sum(rate(tollgate_request_duration_seconds[$__rate_interval]))`, want: "is a histogram, which has no series of its own"},
		{expr: `sum by (le) (rate(tollgate_request_duration_seconds_bucket[$__rate_interval])) / sum(up)`, want: "up is not exported"},
		{expr: `label_values(tollgate_requests_total, tenant)`, want: "unknown function label_values()"},

		// Labels the metric does not have, in matchers, by, on and functions.
		{expr: `sum by (provider) (rate(tollgate_tokens_total[$__rate_interval]))`, want: `no label "provider"`},
		{expr: `sum(rate(tollgate_cost_micros_total{route="test"}[$__rate_interval]))`, want: `tollgate_cost_micros_total has no label "route"`},
		{expr: `sum by (tenant) (sum by (route) (rate(tollgate_requests_total[$__rate_interval])))`, want: `no label "tenant"`},
		{expr: `histogram_quantile(0.5, sum by (le) (rate(tollgate_requests_total[$__rate_interval])))`, want: `no label "le"`},
		{expr: `histogram_quantile(0.5, sum by (route) (rate(tollgate_request_duration_seconds_bucket[$__rate_interval])))`, want: "without an le label"},
		{expr: `sum by (provider) (rate(tollgate_upstream_requests_total[$__rate_interval])) / on (route) sum by (provider) (rate(tollgate_upstream_requests_total[$__rate_interval]))`, want: `no label "route"`},
		{expr: `label_replace(tollgate_config_info, "x", "$1", "hsh", "(.*)")`, want: `reads label "hsh"`},

		// Label values the proxy never exports.
		{expr: `sum(increase(tollgate_config_reloads_total{result="ok"}[$__range]))`, want: `no series of tollgate_config_reloads_total has result="ok"`},
		{expr: `sum(rate(tollgate_tokens_total{kind="cached"}[$__rate_interval]))`, want: `kind="cached"`},

		// PromQL the proxy's metrics make wrong.
		{expr: `sum by (tenant) (tollgate_requests_total)`, want: "counter tollgate_requests_total is used as it is"},
		{expr: `rate(tollgate_config_info[$__rate_interval])`, want: "not a counter"},
		{expr: `sum(rate(tollgate_requests_total))`, want: "want a range vector (add [$__rate_interval])"},
		{expr: `sum(rate(tollgate_requests_total[5m]))`, want: "range [5m] is fixed"},
		{expr: `sum(rate(tollgate_requests_total[$__interval]))`, want: "range [$__interval] is fixed"},
		{expr: `sum by (provider, code) (rate(tollgate_upstream_requests_total[$__rate_interval])) / sum by (provider) (rate(tollgate_upstream_requests_total[$__rate_interval]))`,
			want: "they never match"},
		{expr: `sum by (provider, code) (rate(tollgate_upstream_requests_total[$__rate_interval])) / ignoring (code) sum by (provider) (rate(tollgate_upstream_requests_total[$__rate_interval]))`,
			want: "the left-hand series are also labelled by {code}"},
		{expr: `sum by (tenant, code) (rate(tollgate_refusals_total[$__rate_interval])) / on (tenant) group_right sum by (tenant) (rate(tollgate_requests_total[$__rate_interval]))`,
			want: "the left-hand series are also labelled by {code}"},
		{expr: `rat(tollgate_requests_total[$__rate_interval])`, want: "unknown function rat()"},
		{expr: `histogram_count(rate(tollgate_request_duration_seconds_bucket[$__rate_interval]))`, want: "native histograms"},
		{expr: `tollgate_requests_total[$__rate_interval]`, want: "a panel can show only"},

		// Syntax.
		{expr: `sum(rate(tollgate_requests_total[$__rate_interval])`, want: "syntax error"},
		{expr: `sum by (route (rate(tollgate_requests_total[$__rate_interval]))`, want: "syntax error"},
		{expr: `tollgate_requests_total{tenant="a}`, want: "unterminated string"},
		{expr: `tollgate_requests_total{tenant~"a"}`, want: "syntax error"},
		{expr: `sum(rate(tollgate_requests_total[$__rate_interval])) sum`, want: "syntax error"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			used, err := checkExpr(tc.expr, ex)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("a right query failed: %v", err)
				}
				if got := strings.Join(used, ","); got != tc.used {
					t.Errorf("used %s, want %s", got, tc.used)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestCheckVariableQuery(t *testing.T) {
	ex := proxyExports(t)
	for q, want := range map[string]string{
		`label_values(tollgate_requests_total, tenant)`:                               "",
		`label_values(tollgate_requests_total{tenant=~"$tenant"}, route)`:             "",
		`label_values(provider)`:                                                      "",
		`label_values(tollgate_request_duration_seconds_bucket{route=~"$route"}, le)`: "",
		`label_values(tollgate_requests_total, currency)`:                             `has no label "currency"`,
		`label_values(tollgate_tenants_total, tenant)`:                                "not exported",
		`label_values(gateway)`:                                                       `no exported metric has a label "gateway"`,
		`label_values(tollgate_requests_total{tenant=~"$tenant"}, route`:              "none of",
	} {
		_, err := checkVariableQuery(q, ex)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: got %v, want %q", q, err, want)
		}
	}
}

// The proxy under test: one tenant that pays, one that is refused with a
// 402, an upstream that reports cached input tokens, and a refused reload.

const (
	payerKey = "tg_grafana-payer-key"
	brokeKey = "tg_grafana-broke-key"
	broke    = "grafana/broke"
)

func keyHash(k string) string { s := sha256.Sum256([]byte(k)); return hex.EncodeToString(s[:]) }

func config(upstream string) *dataplane.Config {
	price := dataplane.Price{InputPerMillion: money.MustParse("10"), CachedInputPerMillion: money.MustParse("5"), OutputPerMillion: money.MustParse("30")}
	return &dataplane.Config{
		SchemaVersion: dataplane.SchemaVersion, Gateway: "grafana/gw",
		Listeners: []dataplane.Listener{{Name: "http", Port: 8080, GatewayPort: 8080}},
		Limits:    dataplane.Limits{MaxRequestBodyBytes: 64 << 10},
		Logging:   dataplane.Logging{Level: "info"},
		Ledger:    dataplane.Ledger{Type: "Embedded"},
		Providers: []dataplane.Provider{{Name: "grafana/openai", Type: "OpenAI", BaseURL: upstream + "/v1", CredentialKey: "openai",
			Timeout: dataplane.Duration(5 * time.Second), Currency: "USD", Models: []dataplane.Model{{Name: "gpt-4o-mini", Price: price}}}},
		Routes: []dataplane.Route{{Name: "grafana/chat", Rules: []dataplane.Rule{{Name: "gpt",
			Matches: []dataplane.Match{{Model: "gpt-*"}}, Backends: []dataplane.Backend{{Provider: "grafana/openai", Weight: 1}}}}}},
		Tenants: []dataplane.Tenant{
			{Name: "grafana/payer", Keys: []dataplane.Key{{Name: "k", SHA256: keyHash(payerKey)}}},
			{Name: broke, Keys: []dataplane.Key{{Name: "k", SHA256: keyHash(brokeKey)}}},
		},
	}
}

// refuser refuses the broke tenant with a 402 and meters everyone else.
type refuser struct{}

func (refuser) Admit(ctx context.Context, x *proxy.Exchange) (proxy.Ticket, *proxy.Refusal) {
	if x.Tenant == broke {
		return nil, &proxy.Refusal{Status: http.StatusPaymentRequired,
			Body: func(provider.API) []byte { return []byte(`{"error":{"message":"payment required"}}`) }}
	}
	return proxy.Meter{}.Admit(ctx, x)
}

// proxyExports drives requests through a proxy.Server with its own metrics
// on a fresh registry, and returns what the registry exports.
func proxyExports(t *testing.T) exports {
	t.Helper()
	reg := prometheus.NewRegistry()
	fake, err := fakeprovider.Start(fakeprovider.Options{CachedTokens: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	srv := proxy.New(proxy.Options{Metrics: proxy.NewMetrics(reg), Admitter: refuser{}})
	cfg := config(fake.URL())
	if _, err := dataplane.Encode(cfg); err != nil { // sets the hash that tollgate_config_info reports
		t.Fatal(err)
	}
	creds := map[string][]byte{"openai": []byte(fakeprovider.OpenAIKey)}
	if err := srv.Load(cfg, creds); err != nil {
		t.Fatal(err)
	}
	bad := *cfg
	bad.Listeners = nil
	if err := srv.Load(&bad, creds); err == nil {
		t.Fatal("a config without listeners was loaded")
	}
	for key, want := range map[string]int{payerKey: http.StatusOK, brokeKey: http.StatusPaymentRequired} {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a dashboard for a tollgate"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if body, _ := io.ReadAll(rec.Body); rec.Code != want {
			t.Fatalf("status %d, want %d: %s", rec.Code, want, body)
		}
	}
	ex, err := gatherExports(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Only vectors with samples are gathered: the requests above must give
	// every registered metric one, or the checks would miss its labels.
	for _, name := range registered(t, reg) {
		if _, ok := ex[name]; !ok {
			t.Fatalf("the proxy registers %s, but the requests of this test gave it no sample: drive one that does", name)
		}
	}
	return ex
}

var fqName = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*")`)

// registered lists the names of the metrics registered with reg.
func registered(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	var names []string
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		name, err := strconv.Unquote(m[1])
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		t.Fatal("proxy.NewMetrics registered nothing")
	}
	return names
}
