package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
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
