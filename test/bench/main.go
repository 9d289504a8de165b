// Command bench measures the proxy against a tuned httputil.ReverseProxy in
// the same run, on 127.0.0.1: a fake OpenAI upstream, the proxy with auth,
// routing and metering on, and the baseline as separate processes. It
// reports requests per second, p50 and p99 latency and the proxy's CPU time
// per request, and the ratio proxy/baseline for each. A CPU ratio is the
// median of the ratios of the 12 interleaved rounds. Every load is bounded
// in requests.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
)

// Tenants: one metered only, one under a prepaid plan with ample credit,
// one under the same plan with none (every request gets the 402).
const (
	key       = "tg_bench-key"
	paidKey   = "tg_bench-paid"
	brokeKey  = "tg_bench-broke"
	redisPort = "16399"
)

func main() {
	scale := flag.Float64("scale", 1, "multiply the number of requests of every scenario")
	rows := flag.String("rows", "", "run only the scenarios whose name matches this regular expression")
	concs := flag.String("conc", "1,64", "concurrency levels, comma-separated")
	profiling := flag.Bool("profiling", false, "serve /debug/pprof on the proxies' admin ports (18081 Embedded, 18091 Redis)")
	pin := flag.Bool("pin", true, "run the servers under test on the last CPU and everything else on the others (needs taskset and 2 CPUs)")
	flag.Parse()
	if *pin && os.Getenv(pinnedEnv) == "" {
		pinSelf() // returns only when pinning is not possible
	}
	// The load generator and the fake upstream must not be a source of
	// latency themselves: with Go's default GC this process collects every
	// few MB, about every 30 streams, each time for a millisecond or two on
	// its one CPU, and that was most of the streams' p99. It collects
	// between slices (see measure) and otherwise only past 2 GiB.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(2 << 30)
	only, err := regexp.Compile(*rows)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: -rows:", err)
		os.Exit(2)
	}
	var levels []int
	for _, c := range strings.Split(*concs, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "bench: -conc: not a concurrency:", c)
			os.Exit(2)
		}
		levels = append(levels, n)
	}
	if err := run(*scale, only, levels, *profiling); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// pinnedEnv marks the bench process once it runs on the load generator's CPUs.
const pinnedEnv = "TOLLGATE_BENCH_PINNED"

// pinSelf runs the bench again on all CPUs but the last, with the servers
// under test to go on the last one: the load generator, the fake upstream
// and Redis keep the others, so that a server's CPU time and latency tail
// are its own, not the scheduler's juggling of the generator against it on
// a small machine. It returns if that is not possible.
func pinSelf() {
	n := numCPU()
	self, err := os.Executable()
	if _, lerr := exec.LookPath("taskset"); n < 2 || err != nil || lerr != nil {
		fmt.Fprintln(os.Stderr, "bench: not pinning the servers under test to a CPU of their own (needs taskset and 2 CPUs)")
		return
	}
	cmd := exec.Command("taskset", append([]string{"-c", fmt.Sprintf("0-%d", n-2), self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), pinnedEnv+"="+strconv.Itoa(n-1))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = diesWithUs()
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// diesWithUs makes a child process get SIGKILL when the bench dies, however
// it dies, so that no server outlives a run (and holds its port).
func diesWithUs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// process is a server under test.
type process struct {
	cmd  *exec.Cmd
	addr string
}

func (p *process) cpu() time.Duration {
	if p.cmd == nil {
		return 0 // the upstream itself, called directly
	}
	return cpuTime(p.cmd.Process.Pid)
}

func run(scale float64, only *regexp.Regexp, levels []int, profiling bool) error {
	dir, err := os.MkdirTemp("", "tollgate-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, pkg := range []string{"./cmd/proxy", "./test/bench/baseline"} {
		out := filepath.Join(dir, filepath.Base(pkg))
		// Built as the image builds them (see the Dockerfile): what ships is what is measured.
		build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
		}
	}
	fake, err := fakeprovider.Start(fakeprovider.Options{ReplyWords: 40, NoAuth: true})
	if err != nil {
		return err
	}
	defer fake.Close()

	cfgPath, err := writeConfig(dir, fake.URL(), "config.json", dataplane.Ledger{Type: "Embedded"}, 18080)
	if err != nil {
		return err
	}
	redisCfg, err := writeConfig(dir, fake.URL(), "config-redis.json", dataplane.Ledger{Type: "Redis", Redis: &dataplane.RedisLedger{Address: "127.0.0.1:" + redisPort}}, 18090)
	if err != nil {
		return err
	}
	// A server left over from another run would answer in place of the
	// ones started here, and its CPU would not be counted.
	for _, port := range []string{"18080", "18081", "18090", "18091", redisPort} {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			return fmt.Errorf("port %s is taken (another bench or proxy still running?): %w", port, err)
		}
		_ = l.Close()
	}
	redis, err := startRedis()
	if err != nil {
		return err
	}
	defer stopProcess(redis)
	proxyArgs := func(cfg, port string) []string {
		return []string{"--config", cfg, "--listen-address", "127.0.0.1:" + port + "0", "--admin-address", "127.0.0.1:" + port + "1",
			"--log-level", "error", "--ledger-dir", dir, "--profiling=" + strconv.FormatBool(profiling)}
	}
	proxyRedis, err := startProcess(filepath.Join(dir, "proxy"), proxyArgs(redisCfg, "1809")...)
	if err != nil {
		return err
	}
	defer stopProcess(proxyRedis)
	proxyRedis.addr = "127.0.0.1:18090"
	if err := waitReady("http://127.0.0.1:18091/readyz"); err != nil {
		return err
	}
	proxy, err := startProcess(filepath.Join(dir, "proxy"), proxyArgs(cfgPath, "1808")...)
	if err != nil {
		return err
	}
	defer stopProcess(proxy)
	proxy.addr = "127.0.0.1:18080"
	if err := waitReady("http://127.0.0.1:18081/readyz"); err != nil {
		return err
	}
	idleRSS := rssMB(proxy.cmd.Process.Pid)
	base, err := startProcess(filepath.Join(dir, "baseline"), "--upstream", fake.URL())
	if err != nil {
		return err
	}
	defer stopProcess(base)

	where := "every process on every CPU"
	if cpu := os.Getenv(pinnedEnv); cpu != "" {
		where = "servers under test on CPU " + cpu + ", load generator, fake upstream and Redis on the others"
	}
	fmt.Printf("Tollgate proxy benchmark (%s, %d CPUs, 127.0.0.1, %s; fake upstream replies 40 tokens)\n", time.Now().UTC().Format(time.RFC3339), numCPU(), where)
	fmt.Printf("targets take turns in %d rounds; a cpu x figure is the median of the rounds' ratios, and so is a target's p99 added\n", rounds)
	fmt.Printf("%-34s %5s %8s %9s %9s %11s %8s %8s %8s\n", "scenario", "conc", "req/s", "p50", "p99", "cpu/req", "rps x", "p99 x", "cpu x")
	type scenario struct {
		name, model string
		stream      bool
	}
	var added []string
	for _, sc := range []scenario{
		{"pass-through", "gpt-4o-mini", false},
		{"pass-through stream", "gpt-4o-mini", true},
		{"OpenAI client -> Anthropic", "claude-sonnet-4-5", false},
		{"OpenAI client -> Anthropic stream", "claude-sonnet-4-5", true},
	} {
		if !only.MatchString(sc.name) {
			continue
		}
		for _, conc := range levels {
			n := requests(conc, scale)
			// The baseline forwards to the same upstream API: for translated
			// rows it is a pass-through to the upstream's own wire format.
			baseBody, basePath := body("gpt-4o-mini", sc.stream), "/v1/chat/completions"
			if strings.HasPrefix(sc.model, "claude") {
				baseBody, basePath = anthropicBody(sc.stream), "/v1/messages"
			}
			targets := []target{
				{p: base, url: "http://" + base.addr + basePath, payload: baseBody},
				{p: proxy, url: "http://" + proxy.addr + "/v1/chat/completions", payload: body(sc.model, sc.stream)},
			}
			if conc == 1 { // the latency added at concurrency 1 is against calling the upstream directly
				targets = append(targets, target{p: &process{}, url: fake.URL() + basePathFor(sc.model, basePath), payload: baseBody})
			}
			rs := measure(conc, n, targets...)
			b, p := rs[0], rs[1]
			cpuX, spread := cpuRatio(p, b)
			fmt.Printf("%-34s %5d %8.0f %9s %9s %11s %8.2f %8.2f %8.2f   baseline: %.0f req/s, p50 %s, p99 %s, cpu/req %s\n",
				sc.name, conc, p.rps, ms(p.p50), ms(p.p99), us(p.cpu), p.rps/b.rps, ratio(p.p99, b.p99), cpuX,
				b.rps, ms(b.p50), ms(b.p99), us(b.cpu))
			if p.failed > 0 || b.failed > 0 {
				return fmt.Errorf("%s: %d proxy and %d baseline requests failed", sc.name, p.failed, b.failed)
			}
			limit := 1.3 // CPU per request against the baseline
			if strings.HasPrefix(sc.model, "claude") {
				limit = 2
			}
			checks.add(fmt.Sprintf("%s, concurrency %d: CPU per request x baseline", sc.name, conc), cpuX, limit, false, spread)
			if conc == 1 {
				d := rs[2]
				added = append(added, fmt.Sprintf("%-34s proxy p99 %s - direct p99 %s = %s added (baseline adds %s)",
					sc.name, ms(p.p99), ms(d.p99), ms(p.p99-d.p99), ms(b.p99-d.p99)))
				pm, spread := addedP99(p, d)
				bm, _ := addedP99(b, d)
				added = append(added, fmt.Sprintf("%-34s   median of the rounds: %.3fms added (%s); the baseline adds %.3fms", "", pm, spread, bm))
				checks.add(sc.name+", concurrency 1: p99 latency added, ms", pm, 0.5, true,
					fmt.Sprintf("%s; the baseline adds %.3fms", spread, bm))
			}
		}
	}
	fmt.Println("\nunder an enforcing prepaid policy (Reserve before, Settle after), ratios against the same proxy without a policy and against the baseline:")
	fmt.Printf("%-34s %5s %8s %9s %9s %11s %8s %8s\n", "scenario", "conc", "req/s", "p50", "p99", "cpu/req", "cpu x pol", "cpu x base")
	plain := body("gpt-4o-mini", false)
	for _, conc := range levels {
		// Three times the requests of the rows above: these targets are
		// 10-15% effects, and a round of a few hundred milliseconds keeps
		// one round's ratio from hanging on a few scheduler events.
		n := 3 * requests(conc, scale)
		// Every row's slice counts what its server still does once the
		// last answer is out (the Embedded ledger commits its journal every
		// 25ms, a collection may be under way): three rows share one
		// process, and that work would otherwise land in the next row's.
		const after = 150 * time.Millisecond
		rows := []struct {
			name string
			target
		}{
			{"(baseline)", target{p: base, url: "http://" + base.addr + "/v1/chat/completions", payload: plain, after: after}},
			{"(same proxy, no policy)", target{p: proxy, url: "http://" + proxy.addr + "/v1/chat/completions", payload: plain, after: after}},
			{"enforced, Embedded ledger", target{p: proxy, url: "http://" + proxy.addr + "/v1/chat/completions", payload: plain, apiKey: paidKey, after: after}},
			{"enforced, Redis ledger", target{p: proxyRedis, url: "http://" + proxyRedis.addr + "/v1/chat/completions", payload: plain, apiKey: paidKey, after: after}},
			{"refused with the declared 402", target{p: proxy, url: "http://" + proxy.addr + "/v1/chat/completions", payload: plain, apiKey: brokeKey, want: 402, after: after}},
		}
		rows = slices.DeleteFunc(rows, func(r struct {
			name string
			target
		}) bool {
			return !strings.HasPrefix(r.name, "(") && !only.MatchString(r.name)
		})
		targets := make([]target, len(rows))
		for i, r := range rows {
			targets[i] = r.target
		}
		rs := measure(conc, n, targets...)
		b, free := rs[0], rs[1]
		for i, row := range rows[2:] {
			r := rs[i+2]
			if r.failed > 0 {
				return fmt.Errorf("%s: %d requests did not get %d", row.name, r.failed, row.want)
			}
			polX, spread := cpuRatio(r, free)
			baseX, _ := cpuRatio(r, b)
			fmt.Printf("%-34s %5d %8.0f %9s %9s %11s %8.2f %8.2f\n", row.name, conc, r.rps, ms(r.p50), ms(r.p99), us(r.cpu), polX, baseX)
			switch row.name {
			case "enforced, Embedded ledger":
				checks.add(fmt.Sprintf("%s, concurrency %d: CPU per request x no policy", row.name, conc), polX, 1.15, false, spread)
			case "refused with the declared 402":
				checks.add(fmt.Sprintf("a 402, concurrency %d: CPU x a forwarded request", conc), polX, 0.5, true, spread)
			}
		}
		freeX, _ := cpuRatio(free, b)
		fmt.Printf("%-34s %5d %8.0f %9s %9s %11s %8s %8.2f\n", "(same proxy, no policy)", conc, free.rps, ms(free.p50), ms(free.p99), us(free.cpu), "1.00", freeX)
	}

	fmt.Println("\nlatency the proxy adds at concurrency 1 (against calling the fake upstream directly):")
	for _, a := range added {
		fmt.Println("  " + a)
	}
	fmt.Printf("\nproxy memory: %d MB RSS idle with its config loaded, %d MB RSS after the run\n", idleRSS, rssMB(proxy.cmd.Process.Pid))
	checks.add("idle memory, MB RSS", float64(idleRSS), 30, true, "")
	checks.print()
	return nil
}

// targets are the goals the issues set, checked against this run's figures.
type targets []string

var checks targets

// add records a figure against its limit: at most the limit, or strictly
// below it; a note is printed beside it.
func (t *targets) add(what string, got, limit float64, strict bool, note string) {
	ok := got <= limit
	if strict {
		ok = got < limit
	}
	mark := "met"
	if !ok {
		mark = "MISSED"
	}
	line := fmt.Sprintf("  %-6s %-80s %6.2f (target %.2f)", mark, what, got, limit)
	if note != "" {
		line += "; " + note
	}
	*t = append(*t, line)
}

func (t targets) print() {
	fmt.Println("\ntargets:")
	for _, l := range t {
		fmt.Println(l)
	}
}

// requests is how many requests a scenario sends: enough for a p99 that is
// not one stray event of the machine, in each of the rounds (at
// concurrency 1, a round's 7th slowest).
func requests(conc int, scale float64) int {
	return int(float64(min(max(8000, 1500*conc), 12000)) * scale)
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration // server CPU per request
	// rounds is the server CPU per request in each round, for ratios
	// taken round by round.
	rounds []time.Duration
	// p99s is each round's p99 latency.
	p99s   []time.Duration
	failed int
}

// target is what one row of a scenario loads: a server, its URL, the
// request body, the tenant's key and the status every answer must have.
type target struct {
	p       *process
	url     string
	payload string
	apiKey  string // default: the metered tenant
	want    int    // default 200
	// after is how long a slice's CPU is still counted once its last
	// answer is out, for the work the server does after it.
	after time.Duration
}

// rounds is how many slices the requests of one measurement are cut into.
// The targets of a scenario take turns slice by slice, so that a change in
// the machine's load (it is shared) falls on all of them alike.
const rounds = 12

// measure sends n requests with conc workers to every target, interleaved,
// and measures each one's server CPU.
func measure(conc, n int, targets ...target) []result {
	type total struct {
		lat     []time.Duration
		cpu     time.Duration
		elapsed time.Duration
		failed  int
		rounds  []time.Duration
		p99s    []time.Duration
	}
	totals := make([]total, len(targets))
	clients := make([]*http.Client, len(targets))
	for i, t := range targets {
		if targets[i].apiKey == "" {
			targets[i].apiKey = key
		}
		if targets[i].want == 0 {
			targets[i].want = 200
		}
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxIdleConns: conc}}
		for range min(conc*4, n) { // warm up connections and caches
			_ = once(clients[i], t.url, t.payload, targets[i].apiKey, targets[i].want)
		}
	}
	for r := range rounds {
		slice := n / rounds
		if r < n%rounds {
			slice++
		}
		for i, t := range targets {
			lat, failed, cpu, elapsed := load(clients[i], t, conc, slice)
			tt := &totals[i]
			tt.lat, tt.failed, tt.cpu, tt.elapsed = append(tt.lat, lat...), tt.failed+failed, tt.cpu+cpu, tt.elapsed+elapsed
			if slice > 0 {
				ls := slices.Clone(lat)
				slices.Sort(ls)
				tt.p99s = append(tt.p99s, ls[len(ls)*99/100])
				tt.rounds = append(tt.rounds, cpu/time.Duration(slice))
			}
			// Collect between slices, while nothing is timed: a
			// measurement of four targets at concurrency 64 allocates
			// about 2 GiB here, and the collection the limit forces
			// then (and the pages it returns and faults back) fell in
			// whichever slice was running.
			runtime.GC()
		}
	}
	// Each measurement starts from the same state: the connections of
	// this one closed (64 idle ones per server after concurrency 64, with
	// their goroutines) and the load generator's garbage collected.
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
	out := make([]result, len(targets))
	for i, tt := range totals {
		if targets[i].p.cmd != nil && tt.cpu <= 0 {
			// A server that died, or another one answering in its place.
			fmt.Fprintf(os.Stderr, "bench: %s used no CPU for its requests\n", targets[i].url)
			os.Exit(1)
		}
		slices.Sort(tt.lat)
		k := len(tt.lat)
		out[i] = result{rps: float64(k) / tt.elapsed.Seconds(), p50: tt.lat[k/2], p99: tt.lat[k*99/100], cpu: tt.cpu / time.Duration(k),
			rounds: tt.rounds, failed: tt.failed, p99s: tt.p99s}
	}
	return out
}

// load sends n requests to t with conc workers.
func load(client *http.Client, t target, conc, n int) (lat []time.Duration, failed int, cpu, elapsed time.Duration) {
	lat = make([]time.Duration, n)
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	cpu0, start := t.p.cpu(), time.Now()
	for range conc {
		wg.Go(func() {
			for i := range jobs {
				t0 := time.Now()
				if err := once(client, t.url, t.payload, t.apiKey, t.want); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed = time.Since(start)
	time.Sleep(t.after)
	return lat, failed, t.p.cpu() - cpu0, elapsed
}

func once(c *http.Client, url, payload, apiKey string, want int) error {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(payload))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("x-api-key", apiKey)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// basePathFor is the upstream path of a scenario when called directly.
func basePathFor(model, basePath string) string {
	if strings.HasPrefix(model, "claude") {
		return "/v1/messages"
	}
	return basePath
}

func body(model string, stream bool) string {
	s := ""
	if stream {
		s = `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return `{"model":"` + model + `","max_tokens":100,"messages":[{"role":"user","content":"Write a short note about toll roads."}]` + s + `}`
}

func anthropicBody(stream bool) string {
	s := ""
	if stream {
		s = `,"stream":true`
	}
	return `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"Write a short note about toll roads."}]` + s + `}`
}

func writeConfig(dir, upstream, name string, led dataplane.Ledger, port int32) (string, error) {
	hash := func(k string) string { s := sha256.Sum256([]byte(k)); return hex.EncodeToString(s[:]) }
	c := &dataplane.Config{
		SchemaVersion: dataplane.SchemaVersion, Gateway: "bench/gw",
		Listeners: []dataplane.Listener{{Name: "http", Port: port, GatewayPort: port}},
		Limits:    dataplane.Limits{MaxRequestBodyBytes: 4 << 20}, Logging: dataplane.Logging{Level: "error"},
		Ledger: led,
		Providers: []dataplane.Provider{
			{Name: "bench/openai", Type: "OpenAI", BaseURL: upstream + "/v1", Timeout: dataplane.Duration(time.Minute), Currency: "USD",
				Models: []dataplane.Model{{Name: "gpt-4o-mini", Price: dataplane.Price{InputPerMillion: 150000, OutputPerMillion: 600000}}}},
			{Name: "bench/anthropic", Type: "Anthropic", BaseURL: upstream + "/v1", Timeout: dataplane.Duration(time.Minute), Currency: "USD",
				Models: []dataplane.Model{{Name: "claude-sonnet-4-5", Price: dataplane.Price{InputPerMillion: 3000000, OutputPerMillion: 15000000}}}},
		},
		Routes: []dataplane.Route{{Name: "bench/chat", Rules: []dataplane.Rule{
			{Name: "gpt", Matches: []dataplane.Match{{Model: "gpt-*"}}, Backends: []dataplane.Backend{{Provider: "bench/openai", Weight: 1}}},
			{Name: "claude", Matches: []dataplane.Match{{Model: "claude-*"}}, Backends: []dataplane.Backend{{Provider: "bench/anthropic", Weight: 1}}},
		}}},
		Tenants: []dataplane.Tenant{
			{Name: "bench/tenant", Keys: []dataplane.Key{{Name: "k", SHA256: hash(key)}}},
			{Name: "bench/paid", Keys: []dataplane.Key{{Name: "k", SHA256: hash(paidKey)}}, Credits: []dataplane.Credit{{ID: "ample", Amount: 1_000_000_000_000}}},
			{Name: "bench/broke", Keys: []dataplane.Key{{Name: "k", SHA256: hash(brokeKey)}}},
		},
		Policies: []dataplane.Policy{{Name: "bench/prepaid", Mode: "Enforce", Currency: "USD", Admission: "Reserve", FailureMode: "FailClosed",
			Prepaid: true, Refusal: dataplane.Refusal{Code: "credits_exhausted", Message: "Top up to continue."},
			Targets: dataplane.PolicyTargets{Tenants: []string{"bench/paid", "bench/broke"}}}},
	}
	data, err := dataplane.Encode(c)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, data, 0o600)
}

// startRedis runs a throwaway redis-server on 127.0.0.1 for the Redis ledger rows.
func startRedis() (*process, error) {
	cmd := exec.Command("redis-server", "--port", redisPort, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.SysProcAttr = diesWithUs()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis-server (run hack/install-redis.sh): %w", err)
	}
	for range 100 {
		if c, err := net.Dial("tcp", "127.0.0.1:"+redisPort); err == nil {
			c.Close()
			return &process{cmd: cmd}, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("redis-server did not start")
}

func startProcess(bin string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	if cpu := os.Getenv(pinnedEnv); cpu != "" {
		cmd = exec.Command("taskset", append([]string{"-c", cpu, bin}, args...)...)
	}
	cmd.SysProcAttr = diesWithUs()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd}
	// The baseline prints its address; the proxy is told its own.
	if filepath.Base(bin) == "baseline" {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				p.addr = addr
				break
			}
		}
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		if p.addr == "" {
			stopProcess(p)
			return nil, fmt.Errorf("%s did not print its address", bin)
		}
	}
	return p, nil
}

func stopProcess(p *process) {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func waitReady(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s never became ready", url)
}

// cpuTime reads a process's CPU time, all threads, to the nanosecond, from
// its CPU-time clock (Linux: /proc/<pid>/stat counts only 10ms ticks).
func cpuTime(pid int) time.Duration {
	var ts syscall.Timespec
	clock := uintptr(int64(^pid)<<3 | 2) // the process's CPUCLOCK_SCHED clock
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

func rssMB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb / 1024
		}
	}
	return 0
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }
func us(d time.Duration) string { return fmt.Sprintf("%.0fus", float64(d)/1e3) }

// cpuRatio compares two targets' CPU per request round by round and takes
// the median: the targets of a round ran back to back, so a round in which
// the shared machine was slow weighs on both, and one odd round cannot
// move the figure. spread is the lowest and highest round.
func cpuRatio(a, b result) (median float64, spread string) {
	var rs []float64
	for i := range min(len(a.rounds), len(b.rounds)) {
		if b.rounds[i] > 0 {
			rs = append(rs, float64(a.rounds[i])/float64(b.rounds[i]))
		}
	}
	if len(rs) == 0 {
		return ratio(a.cpu, b.cpu), ""
	}
	median = medianOf(rs)
	return median, fmt.Sprintf("rounds %.2f-%.2f", rs[0], rs[len(rs)-1])
}

// addedP99 is the latency a target adds to calling the upstream directly,
// taken round by round: each round's p99 minus the direct calls' p99 in the
// same round, and the median of those. A p99 over the whole run counts
// every stall of the machine (it is shared) into whichever target was
// running; the rounds' median, like the CPU ratios', does not.
func addedP99(a, direct result) (median float64, spread string) {
	var ds []float64
	for i := range min(len(a.p99s), len(direct.p99s)) {
		ds = append(ds, float64(a.p99s[i]-direct.p99s[i])/1e6)
	}
	if len(ds) == 0 {
		return float64(a.p99-direct.p99) / 1e6, ""
	}
	median = medianOf(ds)
	return median, fmt.Sprintf("rounds %.2f-%.2f", ds[0], ds[len(ds)-1])
}

// medianOf sorts xs and returns its median.
func medianOf(xs []float64) float64 {
	slices.Sort(xs)
	if len(xs)%2 == 0 {
		return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return xs[len(xs)/2]
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
