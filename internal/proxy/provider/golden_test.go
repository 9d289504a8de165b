package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

var update = flag.Bool("update", false, "rewrite the golden .out files from the current code")

// goldenKey is the provider key of every golden case. It must reach the
// upstream's auth header and never a client-facing output.
const goldenKey = "sk-golden-secret-key-123"

// goldenCase is a testdata/<kind>/<name>.in.json file.
type goldenCase struct {
	API      string `json:"api"` // chat, completions, embeddings or messages
	Upstream struct {
		Type            string `json:"type"`
		BaseURL         string `json:"baseURL"`
		AzureAPIVersion string `json:"azureAPIVersion"`
		NoKey           bool   `json:"noKey"`
	} `json:"upstream"`
	Model    string          `json:"model"`    // upstream model; defaults to the request's
	Request  json.RawMessage `json:"request"`  // client body; defaults to a small one
	Status   int             `json:"status"`   // upstream status (response cases)
	Response json.RawMessage `json:"response"` // upstream body (response cases); a JSON string is sent as its text
}

var goldenAPIs = map[string]API{"chat": OpenAIChat, "completions": OpenAICompletions, "embeddings": OpenAIEmbeddings, "messages": AnthropicMessages}

var defaultRequests = map[API]string{
	OpenAIChat:        `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
	OpenAICompletions: `{"model":"m","prompt":"hi"}`,
	OpenAIEmbeddings:  `{"model":"m","input":"hi"}`,
	AnthropicMessages: `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`,
}

func init() {
	now = func() int64 { return 1700000000 }
	newID = func(prefix string) string { return prefix + "generated" }
}

// prepare runs ParseRequest and NewRequest for a case.
func (gc *goldenCase) prepare(t *testing.T) (Request, *http.Request, Translator, error) {
	t.Helper()
	api, ok := goldenAPIs[gc.API]
	if !ok {
		t.Fatalf("unknown api %q", gc.API)
	}
	body := []byte(gc.Request)
	if len(body) == 0 {
		body = []byte(defaultRequests[api])
	}
	u := Upstream{Type: gc.Upstream.Type, BaseURL: gc.Upstream.BaseURL, AzureAPIVersion: gc.Upstream.AzureAPIVersion, APIKey: goldenKey}
	if gc.Upstream.NoKey {
		u.APIKey = ""
	}
	parsed, err := ParseRequest(api, body)
	if err != nil {
		return parsed, nil, nil, err
	}
	model := gc.Model
	if model == "" {
		model = parsed.Model
	}
	req, tr, err := NewRequest(context.Background(), u, Call{API: api, Body: body, Model: model, Stream: parsed.Stream})
	return parsed, req, tr, err
}

func goldenFiles(t *testing.T, kind string) []string {
	files, err := filepath.Glob(filepath.Join("testdata", kind, "*.in.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases in testdata/%s: %v", kind, err)
	}
	return files
}

func readCase(t *testing.T, file string) *goldenCase {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var gc goldenCase
	if err := json.Unmarshal(b, &gc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &gc
}

// check compares got with the golden file, or rewrites it with -update.
func check(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output:\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// indent renders v as indented JSON; raw JSON values inside are re-indented.
func indent(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func errorOut(api API, err error) map[string]any {
	status, body := ClientError(api, err)
	return map[string]any{"error": map[string]any{"status": status, "body": json.RawMessage(body)}}
}

func TestGoldenRequests(t *testing.T) {
	for _, file := range goldenFiles(t, "request") {
		name := strings.TrimSuffix(filepath.Base(file), ".in.json")
		t.Run(name, func(t *testing.T) {
			gc := readCase(t, file)
			parsed, req, _, err := gc.prepare(t)
			var out any
			if err != nil {
				out = errorOut(goldenAPIs[gc.API], err)
			} else {
				body, _ := io.ReadAll(req.Body)
				if !json.Valid(body) {
					t.Fatalf("upstream body is not JSON: %s", body)
				}
				headers := map[string]string{}
				for k := range req.Header {
					headers[k] = req.Header.Get(k)
				}
				out = map[string]any{
					"parsed": parsed, "method": req.Method, "url": req.URL.String(),
					"headers": headers, "body": json.RawMessage(body),
				}
			}
			check(t, strings.TrimSuffix(file, ".in.json")+".out.json", indent(t, out))
		})
	}
}

func TestGoldenResponses(t *testing.T) {
	for _, file := range goldenFiles(t, "response") {
		name := strings.TrimSuffix(filepath.Base(file), ".in.json")
		t.Run(name, func(t *testing.T) {
			gc := readCase(t, file)
			_, _, tr, err := gc.prepare(t)
			if err != nil {
				t.Fatal(err)
			}
			body := []byte(gc.Response)
			var s string
			if json.Unmarshal(body, &s) == nil {
				body = []byte(s)
			}
			clientBody, usage, err := tr.Response(gc.Status, body)
			var out any
			if err != nil {
				out = errorOut(goldenAPIs[gc.API], err)
			} else {
				if !json.Valid(clientBody) {
					t.Fatalf("client body is not JSON: %s", clientBody)
				}
				out = map[string]any{"usage": usage, "body": json.RawMessage(clientBody)}
			}
			got := indent(t, out)
			if bytes.Contains(got, []byte(goldenKey)) {
				t.Fatalf("the provider key leaked into the client response: %s", got)
			}
			check(t, strings.TrimSuffix(file, ".in.json")+".out.json", got)
		})
	}
}

func TestGoldenStreams(t *testing.T) {
	for _, file := range goldenFiles(t, "stream") {
		name := strings.TrimSuffix(filepath.Base(file), ".in.json")
		t.Run(name, func(t *testing.T) {
			gc := readCase(t, file)
			_, _, tr, err := gc.prepare(t)
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(file, ".in.json")
			in, err := os.ReadFile(base + ".in.sse")
			if err != nil {
				t.Fatal(err)
			}
			var client bytes.Buffer
			usage, err := tr.Stream(sse.NewWriter(&client), bytes.NewReader(in))
			result := map[string]any{"usage": usage}
			if err != nil {
				result["error"] = err.Error()
			}
			if bytes.Contains(client.Bytes(), []byte(goldenKey)) {
				t.Fatal("the provider key leaked into the client stream")
			}
			assertEventsParse(t, goldenAPIs[gc.API], client.Bytes())
			check(t, base+".out.sse", client.Bytes())
			check(t, base+".out.json", indent(t, result))
		})
	}
}

// assertEventsParse checks that every event a client gets is JSON (or
// OpenAI's [DONE]), and that Anthropic events are named after their type.
func assertEventsParse(t *testing.T, api API, stream []byte) {
	t.Helper()
	rd := sse.NewReader(bytes.NewReader(stream))
	for range 10000 {
		ev, err := rd.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Data) == 0 || string(ev.Data) == "[DONE]" {
			continue
		}
		var v struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(ev.Data, &v); err != nil {
			t.Fatalf("event data is not JSON: %q", ev.Data)
		}
		if api == AnthropicMessages && v.Type != string(ev.Name) {
			t.Fatalf("event %q carries type %q", ev.Name, v.Type)
		}
	}
}

// TestGoldenCoverage keeps the cases honest: every direction has request,
// response and stream cases, including errors.
func TestGoldenCoverage(t *testing.T) {
	var names []string
	for _, kind := range []string{"request", "response", "stream"} {
		for _, f := range goldenFiles(t, kind) {
			names = append(names, kind+"/"+strings.TrimSuffix(filepath.Base(f), ".in.json"))
		}
	}
	sort.Strings(names)
	all := strings.Join(names, " ")
	for _, want := range []string{
		"request/chat-anthropic", "request/chat-gemini", "request/messages-openai",
		"response/chat-anthropic-ok", "response/chat-anthropic-error", "response/chat-gemini-ok", "response/chat-gemini-error",
		"response/messages-openai-ok", "response/messages-openai-error",
		"stream/chat-anthropic", "stream/chat-gemini", "stream/messages-openai", "stream/chat-openai-pass", "stream/messages-anthropic-pass",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no golden case %s*", want)
		}
	}
}
