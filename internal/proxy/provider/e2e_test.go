package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
)

// End to end: an official SDK of the client API talks to a test proxy built
// on this package, whose upstream is the fake provider of another API.

const (
	system = "be brief"                    // 2 tokens to the fake
	prompt = "say something nice about Go" // 5 tokens to the fake
)

func fake(t *testing.T, o fakeprovider.Options) *fakeprovider.Server {
	t.Helper()
	s, err := fakeprovider.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func openAIClient(p *testProxy) openai.Client {
	return openai.NewClient(option.WithBaseURL(p.URL+"/v1/"), option.WithAPIKey("tenant-key"), option.WithMaxRetries(0))
}

func anthropicClient(p *testProxy) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(p.URL), aoption.WithAPIKey("tenant-key"), aoption.WithMaxRetries(0))
}

func chatParams(max int64) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{
		Model:    "alias",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(system), openai.UserMessage(prompt)},
	}
	if max > 0 {
		p.MaxTokens = openai.Int(max)
	}
	return p
}

func wantUsage(t *testing.T, what string, got, want provider.Usage) {
	t.Helper()
	if got != want {
		t.Errorf("%s: usage %+v, want %+v", what, got, want)
	}
}

// chatE2E checks an OpenAI chat client on an upstream whose fake replies
// with 6 words, with 2 of the 7 prompt tokens cached.
func chatE2E(t *testing.T, up provider.Upstream, s *fakeprovider.Server, upstreamModel string) {
	p := newProxy(t, up, map[string]string{"alias": upstreamModel})
	c := openAIClient(p)
	want := provider.Usage{InputTokens: 7, CachedInputTokens: 2, OutputTokens: 6}

	res, err := c.Chat.Completions.New(ctx(t), chatParams(0))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Choices[0].Message.Content; got != fakeprovider.Reply(6) || res.Choices[0].FinishReason != "stop" {
		t.Errorf("content %q finish %q", got, res.Choices[0].FinishReason)
	}
	if u := res.Usage; u.PromptTokens != 7 || u.CompletionTokens != 6 || u.TotalTokens != 13 || u.PromptTokensDetails.CachedTokens != 2 {
		t.Errorf("client usage %+v", u)
	}
	wantUsage(t, "non-stream", p.next(t).usage, want)
	var sent struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal(s.Requests()[0].Body, &sent); err != nil || (sent.Model != upstreamModel && sent.Model != "") {
		t.Errorf("upstream got model %q", sent.Model)
	}

	res, err = c.Chat.Completions.New(ctx(t), chatParams(4))
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].Message.Content != fakeprovider.Reply(4) || res.Choices[0].FinishReason != "length" {
		t.Errorf("max_tokens 4: content %q finish %q", res.Choices[0].Message.Content, res.Choices[0].FinishReason)
	}
	wantUsage(t, "max_tokens", p.next(t).usage, provider.Usage{InputTokens: 7, CachedInputTokens: 2, OutputTokens: 4})

	for _, withUsage := range []bool{true, false} {
		params := chatParams(0)
		if withUsage {
			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		}
		stream := c.Chat.Completions.NewStreaming(ctx(t), params)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			if !acc.AddChunk(stream.Current()) {
				t.Fatal("the SDK refused a chunk")
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if got := acc.Choices[0].Message.Content; got != fakeprovider.Reply(6) || acc.Choices[0].FinishReason != "stop" {
			t.Errorf("stream: content %q finish %q", got, acc.Choices[0].FinishReason)
		}
		if got := acc.Usage.TotalTokens; (got == 13) != withUsage {
			t.Errorf("stream include_usage=%v: client usage %+v", withUsage, acc.Usage)
		}
		wantUsage(t, "stream", p.next(t).usage, want)
	}
}

func TestE2EChatToAnthropic(t *testing.T) {
	s := fake(t, fakeprovider.Options{ReplyWords: 6, CachedTokens: 2})
	up := provider.Upstream{Type: provider.TypeAnthropic, BaseURL: s.URL() + "/v1", APIKey: fakeprovider.AnthropicKey}
	chatE2E(t, up, s, "claude-sonnet-4-5")
}

func TestE2EChatToGemini(t *testing.T) {
	s := fake(t, fakeprovider.Options{ReplyWords: 6, CachedTokens: 2})
	up := provider.Upstream{Type: provider.TypeGemini, BaseURL: s.URL() + "/v1beta", APIKey: fakeprovider.GeminiKey}
	chatE2E(t, up, s, "gemini-2.5-flash")
	if path := s.Requests()[0].Path; path != "/v1beta/models/gemini-2.5-flash:generateContent" {
		t.Errorf("upstream path %s", path)
	}
}

func TestE2EChatPassThrough(t *testing.T) {
	s := fake(t, fakeprovider.Options{ReplyWords: 6, CachedTokens: 2})
	up := provider.Upstream{Type: provider.TypeOpenAI, BaseURL: s.URL() + "/v1", APIKey: fakeprovider.OpenAIKey}
	chatE2E(t, up, s, "gpt-4o-mini")
}

func TestE2EChatToAzure(t *testing.T) {
	s := fake(t, fakeprovider.Options{ReplyWords: 6, CachedTokens: 2})
	up := provider.Upstream{Type: provider.TypeAzureOpenAI, BaseURL: s.URL(), APIKey: fakeprovider.AzureKey, AzureAPIVersion: "2024-10-21"}
	chatE2E(t, up, s, "my-deployment")
}

func messageParams(max int64) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model: "alias", MaxTokens: max,
		System:   []anthropic.TextBlockParam{{Text: system}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
	}
}

// messagesE2E checks an Anthropic client on an upstream whose fake replies
// with 6 words, with 2 of the 7 prompt tokens cached.
func messagesE2E(t *testing.T, up provider.Upstream, upstreamModel string) {
	p := newProxy(t, up, map[string]string{"alias": upstreamModel})
	c := anthropicClient(p)
	want := provider.Usage{InputTokens: 7, CachedInputTokens: 2, OutputTokens: 6}

	msg, err := c.Messages.New(ctx(t), messageParams(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != fakeprovider.Reply(6) || msg.StopReason != "end_turn" {
		t.Errorf("content %+v stop %q", msg.Content, msg.StopReason)
	}
	if u := msg.Usage; u.InputTokens != 5 || u.CacheReadInputTokens != 2 || u.OutputTokens != 6 {
		t.Errorf("client usage %+v", u)
	}
	wantUsage(t, "non-stream", p.next(t).usage, want)

	for _, max := range []int64{100, 3} {
		stream := c.Messages.NewStreaming(ctx(t), messageParams(max))
		var acc anthropic.Message
		for stream.Next() {
			if err := acc.Accumulate(stream.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		n, stop := 6, anthropic.StopReasonEndTurn
		if max == 3 {
			n, stop = 3, anthropic.StopReasonMaxTokens
		}
		if len(acc.Content) != 1 || acc.Content[0].Text != fakeprovider.Reply(n) || acc.StopReason != stop {
			t.Errorf("stream max %d: content %+v stop %q", max, acc.Content, acc.StopReason)
		}
		if u := acc.Usage; u.InputTokens != 5 || u.CacheReadInputTokens != 2 || u.OutputTokens != int64(n) {
			t.Errorf("stream max %d: client usage %+v", max, u)
		}
		wantUsage(t, "stream", p.next(t).usage, provider.Usage{InputTokens: 7, CachedInputTokens: 2, OutputTokens: int64(n)})
	}
}

func TestE2EMessagesToOpenAI(t *testing.T) {
	s := fake(t, fakeprovider.Options{ReplyWords: 6, CachedTokens: 2})
	messagesE2E(t, provider.Upstream{Type: provider.TypeOpenAI, BaseURL: s.URL() + "/v1", APIKey: fakeprovider.OpenAIKey}, "gpt-4o")
}

func TestE2EMessagesToAzure(t *testing.T) {
	s := fake(t, fakeprovider.Options{ReplyWords: 6, CachedTokens: 2})
	messagesE2E(t, provider.Upstream{Type: provider.TypeAzureOpenAI, BaseURL: s.URL(), APIKey: fakeprovider.AzureKey, AzureAPIVersion: "2024-10-21"}, "my-gpt")
}

func TestE2EMessagesPassThrough(t *testing.T) {
	s := fake(t, fakeprovider.Options{ReplyWords: 6, CachedTokens: 2})
	messagesE2E(t, provider.Upstream{Type: provider.TypeAnthropic, BaseURL: s.URL() + "/v1", APIKey: fakeprovider.AnthropicKey}, "claude-sonnet-4-5")
}

func TestE2ECompletionsAndEmbeddings(t *testing.T) {
	s := fake(t, fakeprovider.Options{ReplyWords: 3, EmbeddingDims: 4})
	p := newProxy(t, provider.Upstream{Type: provider.TypeOpenAI, BaseURL: s.URL() + "/v1", APIKey: fakeprovider.OpenAIKey}, nil)
	c := openAIClient(p)
	params := openai.CompletionNewParams{Model: "gpt-3.5-turbo-instruct",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("once upon a time")}}
	res, err := c.Completions.New(ctx(t), params)
	if err != nil || res.Choices[0].Text != fakeprovider.Reply(3) {
		t.Fatalf("completion %+v, %v", res, err)
	}
	wantUsage(t, "completions", p.next(t).usage, provider.Usage{InputTokens: 4, OutputTokens: 3})

	stream := c.Completions.NewStreaming(ctx(t), params)
	var text strings.Builder
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Text)
		}
	}
	if stream.Err() != nil || text.String() != fakeprovider.Reply(3) {
		t.Fatalf("streamed %q, %v", text.String(), stream.Err())
	}
	wantUsage(t, "completions stream", p.next(t).usage, provider.Usage{InputTokens: 4, OutputTokens: 3})

	emb, err := c.Embeddings.New(ctx(t), openai.EmbeddingNewParams{Model: "text-embedding-3-small",
		Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello world", "x"}},
		EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64})
	if err != nil || len(emb.Data) != 2 || len(emb.Data[0].Embedding) != 4 {
		t.Fatalf("embeddings %+v, %v", emb, err)
	}
	wantUsage(t, "embeddings", p.next(t).usage, provider.Usage{InputTokens: 3})
}

func TestE2EErrors(t *testing.T) {
	s := fake(t, fakeprovider.Options{ReplyWords: 6})
	anth := newProxy(t, provider.Upstream{Type: provider.TypeAnthropic, BaseURL: s.URL() + "/v1", APIKey: fakeprovider.AnthropicKey}, nil)
	c := openAIClient(anth)
	var oerr *openai.Error

	s.SetFault(fakeprovider.Fault{Status: 429})
	_, err := c.Chat.Completions.New(ctx(t), chatParams(0))
	if !errors.As(err, &oerr) || oerr.StatusCode != 429 || oerr.Type != "rate_limit_error" || !strings.Contains(oerr.Message, "rate limit") {
		t.Errorf("429: %v", err)
	}
	anth.next(t)
	s.SetFault(fakeprovider.Fault{})

	params := chatParams(0)
	params.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "f"})}
	_, err = c.Chat.Completions.New(ctx(t), params)
	if !errors.As(err, &oerr) || oerr.StatusCode != 400 || !strings.Contains(oerr.Message, "tools") {
		t.Errorf("tools: %v", err)
	}
	anth.next(t)

	// A stream cut midway ends with an error the SDK reports.
	s.SetFault(fakeprovider.Fault{FailAfter: 4, Abort: true})
	stream := c.Chat.Completions.NewStreaming(ctx(t), chatParams(0))
	var text strings.Builder
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "upstream stream failed") || text.String() != fakeprovider.Reply(1) {
		t.Errorf("aborted stream: %q, %v", text.String(), err)
	}
	if r := anth.next(t); r.err == nil || r.usage.InputTokens != 7 {
		t.Errorf("proxy saw %+v", r)
	}
	s.SetFault(fakeprovider.Fault{})

	// A wrong provider key: the client learns the gateway's credential
	// failed, and never sees the key.
	const secret = "sk-ant-wrong-secret-0000"
	bad := newProxy(t, provider.Upstream{Type: provider.TypeOpenAI, BaseURL: s.URL() + "/v1", APIKey: secret}, nil)
	badClient := anthropicClient(bad)
	_, err = badClient.Messages.New(ctx(t), messageParams(10))
	var aerr *anthropic.Error
	if !errors.As(err, &aerr) || aerr.StatusCode != 401 || aerr.Type() != "authentication_error" ||
		strings.Contains(aerr.RawJSON(), secret) || strings.Contains(aerr.RawJSON(), secret[len(secret)-4:]) {
		t.Errorf("wrong key: %v", err)
	}
	bad.next(t)

	// A stream that just stops early ends with Anthropic's error event.
	openaiUp := newProxy(t, provider.Upstream{Type: provider.TypeOpenAI, BaseURL: s.URL() + "/v1", APIKey: fakeprovider.OpenAIKey}, nil)
	s.SetFault(fakeprovider.Fault{FailAfter: 3})
	ac := anthropicClient(openaiUp)
	astream := ac.Messages.NewStreaming(ctx(t), messageParams(100))
	for astream.Next() {
	}
	if err := astream.Err(); !errors.As(err, &aerr) || !strings.Contains(aerr.RawJSON(), "ended before") {
		t.Errorf("truncated stream: %v", err)
	}
	openaiUp.next(t)
}
