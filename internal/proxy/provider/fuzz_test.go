package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseRequest feeds any body to ParseRequest and then to NewRequest
// for each kind of upstream: nothing may panic, a parsed request must be
// sane, and an upstream body must be JSON naming exactly the chosen model.
func FuzzParseRequest(f *testing.F) {
	f.Add(uint8(OpenAIChat), []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	f.Fuzz(func(t *testing.T, apiByte uint8, body []byte) {
		api := API(apiByte%4 + 1)
		r, err := ParseRequest(api, body)
		if err != nil {
			if e := asError(err); e.Status != 400 {
				t.Fatalf("parse error with status %d: %v", e.Status, err)
			}
			return
		}
		if r.Model == "" || r.MaxTokens < 0 || r.PromptTokens < 0 {
			t.Fatalf("bad parse %+v", r)
		}
		for _, typ := range []string{TypeOpenAI, TypeMistral, TypeAnthropic, TypeGemini} {
			req, _, err := NewRequest(context.Background(), Upstream{Type: typ, APIKey: "k"},
				Call{API: api, Body: body, Model: "upstream-model", Stream: r.Stream})
			if err != nil {
				if e := asError(err); e.Status != 400 {
					t.Fatalf("%s: error with status %d: %v", typ, e.Status, err)
				}
				continue
			}
			out, _ := io.ReadAll(req.Body)
			if !json.Valid(out) {
				t.Fatalf("%s: upstream body is not JSON: %s", typ, out)
			}
			if typ == TypeGemini {
				continue // the model is in the URL
			}
			if v, n := lookup(out, "model"); n != 1 || !bytes.Equal(v, []byte(`"upstream-model"`)) {
				t.Fatalf("%s: upstream body names the model %d times (%s): %s", typ, n, v, out)
			}
		}
	})
}

// FuzzParseFast: whatever parseFast reads, encoding/json reads the same.
func FuzzParseFast(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","stream":true,"stream":null,"max_completion_tokens":-3,"messages":[null,{"content":[{"type":"text","text":"x"}]}],"system":"s","prompt":["a"],"input":null}`,
		`{"Model":"m"}`, `{"model":"caf\u00e9"}`, `{"max_tokens":1e3}`, `{"messages":[{"CONTENT":"x"}]}`, `{"messages":{}}`, `{"stream":1}`,
		`{"model":null,"messages":[],"max_tokens":9223372036854775808}`, `{"mod\u0065l":"m"}`, `{"model":"a","model":"b","messages":[{"content":"1","content":"2"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) || !isObject(body) {
			return
		}
		fast, ok := parseFast(body)
		if !ok {
			return
		}
		var slow parsedRequest
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("parseFast read %s, which encoding/json refuses: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s: parseFast %+v, encoding/json %+v", body, fast, slow)
		}
	})
}

// FuzzTextTokens: whatever event the stream fast paths take, decoding it
// gives the same text, and it is only text. The decoding here reads only
// the members the fast paths look at (the slow paths also refuse events
// whose other members have odd types, which the fast paths ignore), and
// events with keys that differ from those only in case are left out:
// encoding/json matches keys regardless of case, JSON does not.
func FuzzTextTokens(f *testing.F) {
	f.Add([]byte(`{"id":"c","choices":[{"index":0,"delta":{"content":" w\u00e9"},"finish_reason":null}],"usage":null}`))
	f.Add([]byte(`{"candidates":[{"content":{"parts":[{"text":" word","thought":false}],"role":"model"}}],"usageMetadata":{"promptTokenCount":9}}`))
	f.Fuzz(func(t *testing.T, event []byte) {
		if tok, ok := openAIContentToken(event); ok && !caseVariant(event, "choices", "delta", "content", "refusal", "finish_reason", "usage") {
			var c struct {
				Choices []struct {
					Delta struct {
						Content *string `json:"content"`
						Refusal *string `json:"refusal"`
					} `json:"delta"`
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
				Usage json.RawMessage `json:"usage"`
			}
			var got string
			if err := json.Unmarshal(event, &c); err != nil {
				t.Fatalf("fast path took an event that does not decode: %v", err)
			}
			if json.Unmarshal(tok, &got) != nil || len(c.Choices) != 1 || c.Choices[0].Delta.Content == nil ||
				*c.Choices[0].Delta.Content != got || got == "" || c.Choices[0].FinishReason != nil ||
				(c.Usage != nil && string(c.Usage) != "null") || c.Choices[0].Delta.Refusal != nil {
				t.Fatalf("fast path read %s from %s", tok, event)
			}
		}
		if tok, _, ok := geminiTextToken(event); ok && !caseVariant(event, "candidates", "content", "parts", "text", "thought", "finishReason", "promptFeedback") {
			var r struct {
				Candidates []struct {
					Content struct {
						Parts []struct {
							Text    string `json:"text"`
							Thought bool   `json:"thought"`
						} `json:"parts"`
					} `json:"content"`
					FinishReason *string `json:"finishReason"`
				} `json:"candidates"`
				PromptFeedback json.RawMessage `json:"promptFeedback"`
			}
			var got string
			if err := json.Unmarshal(event, &r); err != nil {
				t.Fatalf("fast path took an event that does not decode: %v", err)
			}
			if json.Unmarshal(tok, &got) != nil || len(r.Candidates) != 1 || len(r.Candidates[0].Content.Parts) != 1 ||
				r.Candidates[0].Content.Parts[0].Text != got || r.Candidates[0].Content.Parts[0].Thought || got == "" ||
				r.Candidates[0].FinishReason != nil || r.PromptFeedback != nil {
				t.Fatalf("fast path read %s from %s", tok, event)
			}
		}
	})
}

// caseVariant reports whether a JSON text has a key that equals one of
// names but for case.
func caseVariant(data []byte, names ...string) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if k, ok := tok.(string); ok {
			for _, n := range names {
				if k != n && strings.EqualFold(k, n) {
					return true
				}
			}
		}
	}
}
