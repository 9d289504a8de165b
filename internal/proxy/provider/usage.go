package provider

import (
	"bytes"
	"encoding/json"
)

// openAIUsage is the usage object of OpenAI-wire responses and chunks.
type openAIUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func (o *openAIUsage) usage() Usage {
	u := Usage{InputTokens: o.PromptTokens, OutputTokens: o.CompletionTokens}
	if o.PromptTokensDetails != nil {
		u.CachedInputTokens = o.PromptTokensDetails.CachedTokens
	}
	return u
}

// anthropicUsage is Anthropic's usage object. Fields are pointers because
// message_delta repeats only some of them, each a running total.
type anthropicUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
}

// anthropicTotals accumulates Anthropic usage across stream events.
type anthropicTotals struct {
	input, cacheWrite, cacheRead, output int64
}

func (t *anthropicTotals) add(u *anthropicUsage) {
	if u == nil {
		return
	}
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&t.input, u.InputTokens)
	set(&t.cacheWrite, u.CacheCreationInputTokens)
	set(&t.cacheRead, u.CacheReadInputTokens)
	set(&t.output, u.OutputTokens)
}

// usage counts cache writes and reads as input: Anthropic's input_tokens
// leaves both out.
func (t *anthropicTotals) usage() Usage {
	return Usage{
		InputTokens:       t.input + t.cacheWrite + t.cacheRead,
		CachedInputTokens: t.cacheRead,
		OutputTokens:      t.output,
	}
}

// geminiUsage is Gemini's usageMetadata.
type geminiUsage struct {
	PromptTokenCount        int64 `json:"promptTokenCount"`
	CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
	CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
	TotalTokenCount         int64 `json:"totalTokenCount"`
}

// usage counts thinking tokens as output: Gemini bills them so.
func (g *geminiUsage) usage() Usage {
	return Usage{
		InputTokens:       g.PromptTokenCount,
		CachedInputTokens: g.CachedContentTokenCount,
		OutputTokens:      g.CandidatesTokenCount + g.ThoughtsTokenCount,
	}
}

// usageOf decodes the top-level "usage" member of a response body that
// passes through unchanged into v, leaving v alone when there is none. Only
// that member is decoded: the rest is checked to be JSON, not decoded. As
// with encoding/json, the last of duplicate members counts.
func usageOf(body []byte, v any) error {
	if !isObject(body) || !json.Valid(body) {
		return errBadUpstream("a response that is not JSON")
	}
	var raw []byte
	members(body, func(m member) bool {
		if keyIs(m.key, "usage") {
			raw = m.val
		}
		return true
	})
	if raw != nil && json.Unmarshal(raw, v) != nil {
		return errBadUpstream("a response whose usage is not an object")
	}
	return nil
}

// hasMember reports whether the last member named key in data, a JSON
// text, has a value that starts with the byte first. A quote inside a JSON
// string is escaped, so `"key"` followed by a colon only matches a real
// key. The search runs backwards because usage, the key it is for, ends
// OpenAI chunks (as "usage":null in all but the last).
func hasMember(data []byte, key string, first byte) bool {
	for end := len(data); ; {
		i := bytes.LastIndex(data[:end], []byte(key))
		if i < 0 {
			return false
		}
		end = i
		j := i + len(key)
		if i == 0 || data[i-1] != '"' || j >= len(data) || data[j] != '"' {
			continue
		}
		k := skipSpace(data, j+1)
		if k >= len(data) || data[k] != ':' {
			continue
		}
		k = skipSpace(data, k+1)
		return k < len(data) && data[k] == first
	}
}

// isError reports an error event of an OpenAI-wire or Gemini stream: an
// object whose first member is "error".
func isError(data []byte) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	return bytes.HasPrefix(data[i:], []byte(`"error"`))
}

// isDone reports OpenAI's end-of-stream marker.
func isDone(data []byte) bool {
	return string(bytes.TrimSpace(data)) == "[DONE]"
}
