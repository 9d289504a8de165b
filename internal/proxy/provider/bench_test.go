package provider

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

const benchEvents = 200 // content events per benchmark stream

func openAIStream(n int) string {
	var b strings.Builder
	chunk := `data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n"
	for range n {
		b.WriteString(chunk)
	}
	b.WriteString(`data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\n")
	b.WriteString(`data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":200,"total_tokens":219,"prompt_tokens_details":{"cached_tokens":0}}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.String()
}

func anthropicStream(n int) string {
	var b strings.Builder
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for range n {
		b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" word\"}}\n\n")
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":200}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return b.String()
}

func geminiStream(n int) string {
	var b strings.Builder
	for i := range n {
		finish := ""
		if i == n-1 {
			finish = `,"finishReason":"STOP"`
		}
		fmt.Fprintf(&b, `data: {"candidates":[{"content":{"parts":[{"text":" word"}],"role":"model"}%s,"index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":%d,"totalTokenCount":%d},"modelVersion":"gemini-2.5-flash","responseId":"mRvFaM2hH9-vz7IPi4KQiQ0"}`+"\r\n\r\n", finish, i+1, i+10)
	}
	return b.String()
}

// BenchmarkStream measures one upstream stream of benchEvents content
// events through each translator; ns/event and allocs/event are per
// upstream event.
func BenchmarkStream(b *testing.B) {
	chat := `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	msgs := `{"model":"m","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	cases := []struct {
		name, typ string
		api       API
		req, in   string
	}{
		{"pass/openai", TypeOpenAI, OpenAIChat, chat, openAIStream(benchEvents)},
		{"pass/anthropic", TypeAnthropic, AnthropicMessages, msgs, anthropicStream(benchEvents)},
		{"translate/anthropic-to-chat", TypeAnthropic, OpenAIChat, chat, anthropicStream(benchEvents)},
		{"translate/gemini-to-chat", TypeGemini, OpenAIChat, chat, geminiStream(benchEvents)},
		{"translate/openai-to-messages", TypeOpenAI, AnthropicMessages, msgs, openAIStream(benchEvents)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			src := strings.NewReader(c.in)
			w := sse.NewWriter(io.Discard)
			b.SetBytes(int64(len(c.in)))
			b.ReportAllocs()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mallocs := ms.Mallocs
			for b.Loop() {
				_, tr, err := NewRequest(context.Background(), Upstream{Type: c.typ}, Call{API: c.api, Body: []byte(c.req), Model: "m", Stream: true})
				if err != nil {
					b.Fatal(err)
				}
				src.Reset(c.in)
				if _, err := tr.Stream(w, src); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&ms)
			events := float64(b.N * benchEvents)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
			b.ReportMetric(float64(ms.Mallocs-mallocs)/events, "allocs/event")
		})
	}
}

// BenchmarkNewRequest measures building the upstream request.
func BenchmarkNewRequest(b *testing.B) {
	chat := []byte(`{"model":"gpt-4o","temperature":0.7,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"` + strings.Repeat("Tell me about Go. ", 50) + `"}]}`)
	cases := []struct {
		name, typ, model string
		api              API
	}{
		{"pass/same-model", TypeOpenAI, "gpt-4o", OpenAIChat},
		{"pass/rewrite", TypeOpenAI, "gpt-4o-2024-08-06", OpenAIChat},
		{"translate/chat-to-anthropic", TypeAnthropic, "claude-sonnet-4-5", OpenAIChat},
		{"translate/chat-to-gemini", TypeGemini, "gemini-2.5-flash", OpenAIChat},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := NewRequest(context.Background(), Upstream{Type: c.typ, APIKey: "k"}, Call{API: c.api, Body: chat, Model: c.model}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseRequest(OpenAIChat, chat); err != nil {
				b.Fatal(err)
			}
		}
	})
}
