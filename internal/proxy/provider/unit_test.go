package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

func TestEveryProviderTypeIsServed(t *testing.T) {
	for _, typ := range []v1alpha1.ProviderType{v1alpha1.ProviderOpenAI, v1alpha1.ProviderAnthropic, v1alpha1.ProviderGemini,
		v1alpha1.ProviderMistral, v1alpha1.ProviderAzureOpenAI, v1alpha1.ProviderOllama, v1alpha1.ProviderOpenAICompatible} {
		if _, ok := wireOf(string(typ)); !ok {
			t.Errorf("provider type %s has no wire format", typ)
		}
		needsBase := typ == v1alpha1.ProviderAzureOpenAI || typ == v1alpha1.ProviderOpenAICompatible
		if (DefaultBaseURL(string(typ)) == "") != needsBase {
			t.Errorf("provider type %s: default base URL %q", typ, DefaultBaseURL(string(typ)))
		}
	}
	_, _, err := NewRequest(context.Background(), Upstream{Type: "Bedrock"}, Call{API: OpenAIChat, Body: []byte(`{}`), Model: "m"})
	if e := asError(err); e.Status != 500 {
		t.Errorf("unknown type: %v", err)
	}
}

func TestPassThroughKeepsBytes(t *testing.T) {
	body := []byte("{ \"model\" : \"gpt-4o\",\n\t\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9\"}], \"x\": [1, {\"model\":\"inner\"}] }")
	req, _, err := NewRequest(context.Background(), Upstream{Type: TypeOpenAI}, Call{API: OpenAIChat, Body: body, Model: "gpt-4o"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(req.Body); !bytes.Equal(got, body) {
		t.Errorf("same model: body changed to %s", got)
	}
	req, _, err = NewRequest(context.Background(), Upstream{Type: TypeOpenAI}, Call{API: OpenAIChat, Body: body, Model: "gpt-4o-2024"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(req.Body)
	want := "{\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9\"}],\"x\":[1, {\"model\":\"inner\"}],\"model\":\"gpt-4o-2024\"}"
	if string(got) != want {
		t.Errorf("rewrite:\n got %s\nwant %s", got, want)
	}
}

// The upstream must see exactly the model and stream flag the proxy
// decided on, however the client spelled or repeated the keys.
func TestPassThroughDuplicateKeys(t *testing.T) {
	for _, body := range []string{
		`{"model":"cheap","model":"dear","messages":[]}`,
		`{"mod\u0065l":"dear","messages":[]}`,
		`{"model":"cheap","stream":false,"stream":true}`,
	} {
		req, _, err := NewRequest(context.Background(), Upstream{Type: TypeOpenAI}, Call{API: OpenAIChat, Body: []byte(body), Model: "cheap"})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(req.Body)
		if v, n := lookup(got, "model"); n != 1 || string(v) != `"cheap"` {
			t.Errorf("%s -> %s", body, got)
		}
		if v, n := lookup(got, "stream"); n > 1 || (n == 1 && string(v) != "false") {
			t.Errorf("%s -> %s", body, got)
		}
	}
}

func TestHasMember(t *testing.T) {
	cases := []struct {
		data  string
		key   string
		first byte
		want  bool
	}{
		{`{"usage":{"a":1}}`, "usage", '{', true},
		{`{"usage" : {"a":1}}`, "usage", '{', true},
		{`{"usage":null}`, "usage", '{', false},
		{`{"content":"\"usage\":{"}`, "usage", '{', false},
		{`{"x_usage":{}}`, "usage", '{', false},
		{`{"usage_x":{}}`, "usage", '{', false},
		{`{"a":"usage","usage":{}}`, "usage", '{', true},
		{`{"usage":{"a":1},"x":"usage"}`, "usage", '{', true},
		{`{"finish_reason":null}`, "finish_reason", '"', false},
		{`{"finish_reason":"stop"}`, "finish_reason", '"', true},
		{`usage`, "usage", '{', false},
		{`"usage"`, "usage", '{', false},
	}
	for _, c := range cases {
		if got := hasMember([]byte(c.data), c.key, c.first); got != c.want {
			t.Errorf("hasMember(%s, %s) = %v", c.data, c.key, got)
		}
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "new\nline\ttab\r", "\x00\x1f\x7f", "héllo ✓ 😀",
		"bad \xff utf8", "\u2028\u2029", "<&>"} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, got, err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if back != want {
			t.Errorf("%q round-trips to %q", s, back)
		}
	}
}

func TestParseRequest(t *testing.T) {
	cases := []struct {
		api  API
		body string
		want Request
		err  string
	}{
		{OpenAIChat, `{"model":"m","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"12345678"}]}`,
			Request{Model: "m", Stream: true, MaxTokens: 10, PromptTokens: 4 + 2}, ""},
		{OpenAIChat, `{"model":"m","max_completion_tokens":20,"max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"1234"},{"type":"image_url","image_url":{"url":"data:x"}}]}]}`,
			Request{Model: "m", MaxTokens: 20, PromptTokens: 4 + 1 + tokensPerImage}, ""},
		{AnthropicMessages, `{"model":"c","max_tokens":5,"system":[{"type":"text","text":"12345678"}],"messages":[{"role":"user","content":"1234"}]}`,
			Request{Model: "c", MaxTokens: 5, PromptTokens: 4 + 3}, ""},
		{OpenAIEmbeddings, `{"model":"e","input":[[1,2,3],[4]],"stream":true}`, Request{Model: "e", PromptTokens: 4}, ""},
		{OpenAICompletions, `{"model":"x","prompt":["1234","5678"]}`, Request{Model: "x", PromptTokens: 2}, ""},
		{OpenAIChat, `{"messages":[]}`, Request{}, "model is required"},
		{OpenAIChat, `{"model":"m","max_tokens":-1}`, Request{}, "must not be negative"},
		{OpenAIChat, `{"model":"m","stream":"yes"}`, Request{}, "not a valid"},
		{OpenAIChat, `[1]`, Request{}, "JSON object"},
		{OpenAIChat, ``, Request{}, "JSON object"},
	}
	for _, c := range cases {
		got, err := ParseRequest(c.api, []byte(c.body))
		if c.err != "" {
			if e := asError(err); err == nil || e.Status != 400 || !strings.Contains(e.Message, c.err) {
				t.Errorf("%s: err %v, want %q", c.body, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.body, got, err, c.want)
		}
	}
}

func TestClientErrorEnvelopes(t *testing.T) {
	e := &Error{Status: 429, Message: "slow down", Code: "rate_limit_exceeded"}
	status, body := ClientError(OpenAIChat, e)
	if status != 429 || string(body) != `{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}` {
		t.Errorf("openai: %d %s", status, body)
	}
	status, body = ClientError(AnthropicMessages, e)
	if status != 429 || string(body) != `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}` {
		t.Errorf("anthropic: %d %s", status, body)
	}
	status, _ = ClientError(OpenAIChat, errors.New("dial tcp: refused"))
	if status != 502 {
		t.Errorf("plain error: %d", status)
	}
	if got := string(ClientStreamError(AnthropicMessages, errTruncated)); !strings.HasPrefix(got, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"") || !strings.HasSuffix(got, "\n\n") {
		t.Errorf("anthropic stream error: %q", got)
	}
	if got := string(ClientStreamError(OpenAIChat, errTruncated)); !strings.HasPrefix(got, "data: {\"error\":") {
		t.Errorf("openai stream error: %q", got)
	}
}

func TestUpstreamErrorNeverShowsTheKey(t *testing.T) {
	const key = "sk-live-abcdefghijklmnop"
	for _, status := range []int{400, 401, 403, 500} {
		for _, body := range []string{
			`{"error":{"message":"bad key ` + key + `","type":"x"}}`,
			`{"type":"error","error":{"type":"invalid_request_error","message":"` + key + `"}}`,
			key,
		} {
			e := upstreamError(status, []byte(body), key)
			for _, api := range []API{OpenAIChat, AnthropicMessages} {
				if _, out := ClientError(api, e); bytes.Contains(out, []byte(key)) {
					t.Errorf("%d %s leaks: %s", status, body, out)
				}
			}
		}
	}
}

// A read error in the middle of an upstream stream ends the client stream
// with its API's error event, and the usage seen so far is kept.
func TestStreamReadError(t *testing.T) {
	anth := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
	for _, tc := range []struct {
		tr  Translator
		api API
		in  string
	}{
		{&chatFromAnthropic{}, OpenAIChat, anth},
		{&anthropicPass{}, AnthropicMessages, anth},
		{&messagesFromOpenAI{}, AnthropicMessages, "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"},
		{&openAIPass{api: OpenAIChat}, OpenAIChat, "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"},
		{&chatFromGemini{}, OpenAIChat, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}\r\n\r\n"},
	} {
		var out bytes.Buffer
		src := io.MultiReader(strings.NewReader(tc.in), iotest.ErrReader(io.ErrUnexpectedEOF))
		_, err := tc.tr.Stream(sse.NewWriter(&out), src)
		if e := asError(err); err == nil || e.Status != 502 || !strings.Contains(e.Message, "unexpected EOF") {
			t.Errorf("%T: err %v", tc.tr, err)
		}
		if want := ClientStreamError(tc.api, err); !bytes.HasSuffix(out.Bytes(), want) {
			t.Errorf("%T: stream does not end with the error event:\n%s", tc.tr, out.Bytes())
		}
	}
}

func TestStreamClientGone(t *testing.T) {
	gone := errors.New("client gone")
	w := sse.NewWriter(failWriter{gone})
	src := "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n"
	if _, err := (&openAIPass{api: OpenAIChat}).Stream(w, strings.NewReader(src)); !errors.Is(err, gone) {
		t.Errorf("err = %v", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// The raw-token fast path of Anthropic text deltas gives the same chunks
// as decoding them.
func TestAnthropicTextFastPath(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n"
	for _, text := range []string{"plain", ` "q" \ `, "tab\tnl\n", "é ✓ 😀", "</script>", ""} {
		tok := appendString(nil, text)
		fast := `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":` + string(tok) + `}}`
		slow := `{"delta": {"text": ` + string(tok) + `, "type": "text_delta"}, "type": "content_block_delta", "index": 0}`
		if _, ok := anthropicTextToken([]byte(fast)); !ok {
			t.Fatalf("%q: fast path not taken", text)
		}
		if _, ok := anthropicTextToken([]byte(slow)); ok {
			t.Fatalf("%q: fast path taken for a reordered event", text)
		}
		var outs [2]bytes.Buffer
		for i, data := range []string{fast, slow} {
			tr := &chatFromAnthropic{}
			in := start + "event: content_block_delta\ndata: " + data + "\n\nevent: message_stop\ndata: {}\n\n"
			if _, err := tr.Stream(sse.NewWriter(&outs[i]), strings.NewReader(in)); err != nil {
				t.Fatal(err)
			}
		}
		if outs[0].String() != outs[1].String() {
			t.Errorf("%q:\nfast %s\nslow %s", text, outs[0].String(), outs[1].String())
		}
	}
	for _, bad := range []string{
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"b"}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\x"}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":1}}`,
	} {
		if _, ok := anthropicTextToken([]byte(bad)); ok {
			t.Errorf("fast path accepted %s", bad)
		}
	}
}

// usageOf reads only the usage member of a pass-through response: the
// body must still be JSON, and the last of duplicate members counts.
func TestUsageOf(t *testing.T) {
	cases := []struct {
		body string
		want int64 // prompt tokens; -1 for no usage
		bad  bool
	}{
		{`{"id":"x","usage":{"prompt_tokens":7,"completion_tokens":2}}`, 7, false},
		{`{"usage":{"prompt_tokens":1},"choices":[{"usage":{"prompt_tokens":9}}],"usage":{"prompt_tokens":3}}`, 3, false},
		{` {"us\u0061ge":{"prompt_tokens":4}} `, 4, false},
		{`{"usage":null}`, -1, false},
		{`{"choices":[]}`, -1, false},
		{`{"usage":"x"}`, 0, true},
		{`{"usage":{"prompt_tokens":1}`, 0, true},
		{`[{"usage":{"prompt_tokens":1}}]`, 0, true},
		{`{"usage":{"prompt_tokens":1}} trailing`, 0, true},
		{``, 0, true},
	}
	for _, c := range cases {
		var u *openAIUsage
		err := usageOf([]byte(c.body), &u)
		if (err != nil) != c.bad {
			t.Fatalf("%s: err = %v, want error %v", c.body, err, c.bad)
		}
		if c.bad {
			if e := asError(err); e.Status != 502 {
				t.Fatalf("%s: status %d, want 502", c.body, e.Status)
			}
			continue
		}
		got := int64(-1)
		if u != nil {
			got = u.PromptTokens
		}
		if got != c.want {
			t.Fatalf("%s: prompt tokens %d, want %d", c.body, got, c.want)
		}
	}
}

// TestOpenAIContentToken: the fast path of OpenAI chunks to Anthropic
// events takes only chunks that carry nothing but text, and its token is
// the text the slow path would decode.
func TestOpenAIContentToken(t *testing.T) {
	for _, c := range []struct {
		chunk, text string
		fast        bool
	}{
		{`{"id":"c","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}],"usage":null}`, " word", true},
		{`{ "choices" : [ { "delta" : { "role":"assistant", "content" : "caf\u00e9 \"q\"\n" } } ] }`, "café \"q\"\n", true},
		{`{"choices":[{"delta":{"content":"é😀\u2028"},"finish_reason":null}]}`, "é😀\u2028", true},
		{`{"choices":[{"delta":{"content":""}}]}`, "", false},
		{`{"choices":[{"delta":{"content":null}}]}`, "", false},
		{`{"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]}`, "", false},
		{`{"choices":[{"delta":{"content":"a","refusal":"no"}}]}`, "", false},
		{`{"choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":1}}`, "", false},
		{`{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]}`, "", false},
		{`{"choices":[],"usage":null}`, "", false},
		{`{"choices":[{"delta":{"content":"a","content":"b"}}]}`, "", false},
		{`{"choices":[{"delta":{"content":"a"}}],"choices":[]}`, "", false},
		{`{"choices":[{"delta":{"content":"a"}}]`, "", false}, // not JSON
		{`{"choices":[{"delta":{"content":1}}]}`, "", false},
	} {
		tok, ok := openAIContentToken([]byte(c.chunk))
		if ok != c.fast {
			t.Errorf("%s: fast %v, want %v", c.chunk, ok, c.fast)
			continue
		}
		if !ok {
			continue
		}
		var got string
		if err := json.Unmarshal(tok, &got); err != nil || got != c.text {
			t.Errorf("%s: token %s is %q (%v), want %q", c.chunk, tok, got, err, c.text)
		}
	}
}

// TestGeminiTextToken: the same for Gemini events, whose usage comes
// along raw, to be decoded only when asked for.
func TestGeminiTextToken(t *testing.T) {
	const usage = `{"promptTokenCount":9,"candidatesTokenCount":3}`
	for _, c := range []struct {
		event, text string
		fast        bool
	}{
		{`{"candidates":[{"content":{"parts":[{"text":" word"}],"role":"model"},"index":0}],"usageMetadata":` + usage + `,"modelVersion":"m","responseId":"r"}`, " word", true},
		{`{ "candidates" : [ { "content" : { "parts" : [ { "text" : "caf\u00e9\n", "thought" : false } ] } } ] }`, "café\n", true},
		{`{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}]}`, "", false},
		{`{"candidates":[{"content":{"parts":[{"text":"a","thought":true}]}}]}`, "", false},
		{`{"candidates":[{"content":{"parts":[{"text":"a"},{"text":"b"}]}}]}`, "", false},
		{`{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f"}}]}}]}`, "", false},
		{`{"candidates":[{"content":{"parts":[{"text":""}]}}]}`, "", false},
		{`{"candidates":[],"promptFeedback":{"blockReason":"SAFETY"}}`, "", false},
		{`{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"promptFeedback":{}}`, "", false},
		{`{"candidates":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]}`, "", false},
		{`{"candidates":[{"content":{"parts":[{"text":"a","text":"b"}]}}]}`, "", false},
		{`{"candidates":[{"content":{"parts":[{"text":"a"}]}}]`, "", false}, // not JSON
	} {
		tok, u, ok := geminiTextToken([]byte(c.event))
		if ok != c.fast {
			t.Errorf("%s: fast %v, want %v", c.event, ok, c.fast)
			continue
		}
		if !ok {
			continue
		}
		var got string
		if err := json.Unmarshal(tok, &got); err != nil || got != c.text {
			t.Errorf("%s: token %s is %q (%v), want %q", c.event, tok, got, err, c.text)
		}
		if strings.Contains(c.event, "usageMetadata") != (string(u) == usage) {
			t.Errorf("%s: usage %s", c.event, u)
		}
	}
	// The last usage seen raw wins, unless a decoded one came after it.
	var s geminiStreamUsage
	s.seen([]byte(`{"promptTokenCount":1,"candidatesTokenCount":1}`))
	s.seen([]byte(usage))
	if got := s.get(); got.InputTokens != 9 || got.OutputTokens != 3 {
		t.Errorf("usage %+v, want 9 in and 3 out", got)
	}
	s.seen([]byte(`{"promptTokenCount":9,"candidatesTokenCount":4}`))
	s.set(Usage{InputTokens: 9, OutputTokens: 5})
	if got := s.get(); got.OutputTokens != 5 {
		t.Errorf("usage %+v, want the decoded 5 out", got)
	}
}
