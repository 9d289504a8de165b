package fakeprovider_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"

	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
)

// These tests point the official SDKs straight at the fake: if the fake's
// wire format were wrong, the SDKs would fail to decode it.

func start(t *testing.T, o fakeprovider.Options) *fakeprovider.Server {
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

func openAIClient(s *fakeprovider.Server, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(s.URL()+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

const prompt = "say something nice about Go" // 5 tokens to the fake

func TestOpenAIChat(t *testing.T) {
	s := start(t, fakeprovider.Options{ReplyWords: 6, CachedTokens: 2})
	c := openAIClient(s, fakeprovider.OpenAIKey)
	res, err := c.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage(prompt)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Choices[0].Message.Content; got != fakeprovider.Reply(6) || res.Choices[0].FinishReason != "stop" {
		t.Errorf("content %q finish %q", got, res.Choices[0].FinishReason)
	}
	if u := res.Usage; u.PromptTokens != 7 || u.CompletionTokens != 6 || u.TotalTokens != 13 || u.PromptTokensDetails.CachedTokens != 2 {
		t.Errorf("usage = %+v", u)
	}
	if res.Model != "gpt-4o-mini" || res.Object != "chat.completion" {
		t.Errorf("model %q object %q", res.Model, res.Object)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer "+fakeprovider.OpenAIKey || reqs[0].Path != "/v1/chat/completions" {
		t.Errorf("recorded %+v", reqs)
	}
}

func TestOpenAIChatStream(t *testing.T) {
	s := start(t, fakeprovider.Options{ReplyWords: 5})
	c := openAIClient(s, fakeprovider.OpenAIKey)
	for _, withUsage := range []bool{true, false} {
		params := openai.ChatCompletionNewParams{
			Model:     "gpt-4o-mini",
			Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
			MaxTokens: openai.Int(3),
		}
		if withUsage {
			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		}
		stream := c.Chat.Completions.NewStreaming(ctx(t), params)
		var acc openai.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			acc.AddChunk(stream.Current())
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if got := acc.Choices[0].Message.Content; got != fakeprovider.Reply(3) || acc.Choices[0].FinishReason != "length" {
			t.Errorf("content %q finish %q", got, acc.Choices[0].FinishReason)
		}
		wantUsage := openai.CompletionUsage{}
		wantChunks := 5 // role, 3 words, finish
		if withUsage {
			wantUsage = openai.CompletionUsage{PromptTokens: 5, CompletionTokens: 3, TotalTokens: 8}
			wantChunks++
		}
		if u := acc.Usage; u.PromptTokens != wantUsage.PromptTokens || u.CompletionTokens != wantUsage.CompletionTokens || u.TotalTokens != wantUsage.TotalTokens {
			t.Errorf("include_usage=%v: usage = %+v", withUsage, u)
		}
		if chunks != wantChunks {
			t.Errorf("include_usage=%v: %d chunks, want %d", withUsage, chunks, wantChunks)
		}
	}
}

func TestOpenAICompletions(t *testing.T) {
	s := start(t, fakeprovider.Options{ReplyWords: 4})
	c := openAIClient(s, fakeprovider.OpenAIKey)
	params := openai.CompletionNewParams{
		Model:  "gpt-3.5-turbo-instruct",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("once upon a time")},
	}
	res, err := c.Completions.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].Text != fakeprovider.Reply(4) || res.Usage.PromptTokens != 4 || res.Usage.CompletionTokens != 4 {
		t.Errorf("completion %q usage %+v", res.Choices[0].Text, res.Usage)
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Completions.NewStreaming(ctx(t), params)
	var text strings.Builder
	var usage openai.CompletionUsage
	for stream.Next() {
		ch := stream.Current()
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Text)
		}
		if ch.Usage.TotalTokens > 0 {
			usage = ch.Usage
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != fakeprovider.Reply(4) || usage.TotalTokens != 8 {
		t.Errorf("streamed %q usage %+v", text.String(), usage)
	}
}

func TestOpenAIEmbeddings(t *testing.T) {
	s := start(t, fakeprovider.Options{EmbeddingDims: 5})
	c := openAIClient(s, fakeprovider.OpenAIKey)
	var vecs [2][][]float64
	for i, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		res, err := c.Embeddings.New(ctx(t), openai.EmbeddingNewParams{
			Model:          "text-embedding-3-small",
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello world", "three more words"}},
			EncodingFormat: format,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 2 || res.Usage.PromptTokens != 5 || res.Usage.TotalTokens != 5 {
			t.Fatalf("%s: %d embeddings, usage %+v", format, len(res.Data), res.Usage)
		}
		for _, d := range res.Data {
			vecs[i] = append(vecs[i], d.Embedding)
		}
	}
	want := fakeprovider.Embedding(`"hello world"`, 5)
	for f := range vecs {
		for j, x := range vecs[f][0] {
			if len(vecs[f][0]) != 5 || float32(x) != want[j] {
				t.Fatalf("format %d: vector %v, want %v", f, vecs[f][0], want)
			}
		}
	}
	if vecs[0][0][0] == vecs[0][1][0] && vecs[0][0][1] == vecs[0][1][1] {
		t.Error("different inputs got the same vector")
	}
}

func TestOpenAIModelsAndErrors(t *testing.T) {
	s := start(t, fakeprovider.Options{Models: []string{"m1", "m2"}})
	good, bad := openAIClient(s, fakeprovider.OpenAIKey), openAIClient(s, "sk-wrong-key-123456")
	page, err := good.Models.List(ctx(t))
	if err != nil || len(page.Data) != 2 || page.Data[1].ID != "m2" {
		t.Fatalf("models = %+v, %v", page, err)
	}
	_, err = bad.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" || apiErr.Type != "invalid_request_error" {
		t.Fatalf("wrong key: %v", err)
	}
	for _, status := range []int{429, 500} {
		s.SetFault(fakeprovider.Fault{Status: status})
		_, err = good.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
			Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		if !errors.As(err, &apiErr) || apiErr.StatusCode != status || apiErr.Message == "" {
			t.Fatalf("fault %d: %v", status, err)
		}
	}
}

func TestAzure(t *testing.T) {
	s := start(t, fakeprovider.Options{ReplyWords: 2})
	// What the SDK's azure package sets up, without its Azure SDK dependency.
	c := openai.NewClient(option.WithBaseURL(s.URL()+"/openai/deployments/my-deployment/"), option.WithQuery("api-version", "2024-10-21"),
		option.WithHeader("api-key", fakeprovider.AzureKey), option.WithMaxRetries(0))
	res, err := c.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model: "my-deployment", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Requests()[0]
	if res.Choices[0].Message.Content != fakeprovider.Reply(2) || r.Path != "/openai/deployments/my-deployment/chat/completions" ||
		r.RawQuery != "api-version=2024-10-21" || r.Header.Get("api-key") != fakeprovider.AzureKey {
		t.Errorf("content %q, request %s?%s", res.Choices[0].Message.Content, r.Path, r.RawQuery)
	}
}

func TestFaults(t *testing.T) {
	s := start(t, fakeprovider.Options{ReplyWords: 10})
	c := openAIClient(s, fakeprovider.OpenAIKey)
	params := openai.ChatCompletionNewParams{Model: "m", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}

	s.SetFault(fakeprovider.Fault{Latency: 150 * time.Millisecond})
	t0 := time.Now()
	if _, err := c.Chat.Completions.New(ctx(t), params); err != nil || time.Since(t0) < 150*time.Millisecond {
		t.Fatalf("latency: %v after %v", err, time.Since(t0))
	}

	// A clean early end: the SDK sees fewer chunks and no [DONE].
	s.SetFault(fakeprovider.Fault{FailAfter: 3})
	stream := c.Chat.Completions.NewStreaming(ctx(t), params)
	n := 0
	for stream.Next() {
		n++
	}
	if n != 3 || stream.Err() != nil {
		t.Errorf("truncated stream: %d chunks, err %v", n, stream.Err())
	}

	// A cut connection: the SDK reports a read error.
	s.SetFault(fakeprovider.Fault{FailAfter: 3, Abort: true})
	stream = c.Chat.Completions.NewStreaming(ctx(t), params)
	n = 0
	for stream.Next() {
		n++
	}
	if stream.Err() == nil || n > 3 {
		t.Errorf("aborted stream: %d chunks, err %v", n, stream.Err())
	}
}

func TestStrictAndBounded(t *testing.T) {
	s := start(t, fakeprovider.Options{MaxRecorded: 2})
	c := openAIClient(s, fakeprovider.OpenAIKey)
	_, err := c.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{Model: "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}},
		option.WithJSONSet("not_a_param", 1))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "not_a_param") {
		t.Fatalf("unknown parameter: %v", err)
	}
	for range 2 {
		_, _ = c.Models.List(ctx(t))
	}
	if r := s.Requests(); len(r) != 2 || r[0].Path != "/v1/models" {
		t.Errorf("recorded %d requests, first %s", len(r), r[0].Path)
	}
}

func anthropicClient(s *fakeprovider.Server, key string) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(s.URL()), aoption.WithAPIKey(key), aoption.WithMaxRetries(0))
}

func TestAnthropic(t *testing.T) {
	s := start(t, fakeprovider.Options{ReplyWords: 4, CachedTokens: 3})
	c := anthropicClient(s, fakeprovider.AnthropicKey)
	params := anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 100,
		System:    []anthropic.TextBlockParam{{Text: "be brief"}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
	}
	msg, err := c.Messages.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != fakeprovider.Reply(4) || msg.StopReason != "end_turn" {
		t.Errorf("content %+v stop %q", msg.Content, msg.StopReason)
	}
	// 7 prompt tokens, 3 of them from the cache.
	if u := msg.Usage; u.InputTokens != 4 || u.CacheReadInputTokens != 3 || u.OutputTokens != 4 {
		t.Errorf("usage = %+v", u)
	}
	if h := s.Requests()[0].Header; h.Get("x-api-key") != fakeprovider.AnthropicKey || h.Get("anthropic-version") == "" {
		t.Errorf("headers %v", h)
	}

	params.MaxTokens = 2
	stream := c.Messages.NewStreaming(ctx(t), params)
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Content[0].Text != fakeprovider.Reply(2) || acc.StopReason != "max_tokens" ||
		acc.Usage.InputTokens != 4 || acc.Usage.CacheReadInputTokens != 3 || acc.Usage.OutputTokens != 2 {
		t.Errorf("streamed %+v stop %q usage %+v", acc.Content, acc.StopReason, acc.Usage)
	}
}

func TestAnthropicErrors(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	params := anthropic.MessageNewParams{Model: "claude", MaxTokens: 10,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	good, bad := anthropicClient(s, fakeprovider.AnthropicKey), anthropicClient(s, "wrong")
	_, err := bad.Messages.New(ctx(t), params)
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Type() != "authentication_error" {
		t.Fatalf("wrong key: %v", err)
	}
	s.SetFault(fakeprovider.Fault{Status: 529})
	_, err = good.Messages.New(ctx(t), params)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || apiErr.Type() != "overloaded_error" {
		t.Fatalf("overloaded: %v", err)
	}
	s.SetFault(fakeprovider.Fault{})
	params.Temperature = anthropic.Float(1.5)
	_, err = good.Messages.New(ctx(t), params)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Type() != "invalid_request_error" {
		t.Fatalf("temperature 1.5: %v", err)
	}
}

func geminiClient(t *testing.T, s *fakeprovider.Server, key string) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(ctx(t), &genai.ClientConfig{
		APIKey: key, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: s.URL() + "/", APIVersion: "v1beta"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGemini(t *testing.T) {
	s := start(t, fakeprovider.Options{ReplyWords: 5, CachedTokens: 1})
	c := geminiClient(t, s, fakeprovider.GeminiKey)
	cfg := &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText("be brief", genai.RoleUser)}
	res, err := c.Models.GenerateContent(ctx(t), "gemini-2.5-flash", genai.Text(prompt), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text() != fakeprovider.Reply(5) || res.Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Errorf("text %q finish %q", res.Text(), res.Candidates[0].FinishReason)
	}
	if u := res.UsageMetadata; u.PromptTokenCount != 7 || u.CandidatesTokenCount != 5 || u.TotalTokenCount != 12 || u.CachedContentTokenCount != 1 {
		t.Errorf("usage = %+v", u)
	}
	r := s.Requests()[0]
	if r.Path != "/v1beta/models/gemini-2.5-flash:generateContent" || r.Header.Get("x-goog-api-key") != fakeprovider.GeminiKey {
		t.Errorf("request %s %v", r.Path, r.Header)
	}

	cfg.MaxOutputTokens = 3
	var text strings.Builder
	var last *genai.GenerateContentResponse
	for chunk, err := range c.Models.GenerateContentStream(ctx(t), "gemini-2.5-flash", genai.Text(prompt), cfg) {
		if err != nil {
			t.Fatal(err)
		}
		text.WriteString(chunk.Text())
		last = chunk
	}
	if text.String() != fakeprovider.Reply(3) || last.Candidates[0].FinishReason != genai.FinishReasonMaxTokens ||
		last.UsageMetadata.CandidatesTokenCount != 3 || last.UsageMetadata.PromptTokenCount != 7 {
		t.Errorf("streamed %q, last %+v", text.String(), last.UsageMetadata)
	}
	if q := s.Requests()[1].RawQuery; q != "alt=sse" {
		t.Errorf("stream query %q", q)
	}
}

func TestGeminiErrors(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	_, err := geminiClient(t, s, "wrong").Models.GenerateContent(ctx(t), "gemini-2.5-flash", genai.Text("hi"), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 400 || apiErr.Status != "INVALID_ARGUMENT" || !strings.Contains(apiErr.Message, "API key not valid") {
		t.Fatalf("wrong key: %#v", err)
	}
	s.SetFault(fakeprovider.Fault{Status: 429})
	c := geminiClient(t, s, fakeprovider.GeminiKey)
	_, err = c.Models.GenerateContent(ctx(t), "gemini-2.5-flash", genai.Text("hi"), &genai.GenerateContentConfig{
		HTTPOptions: &genai.HTTPOptions{RetryOptions: &genai.HTTPRetryOptions{Attempts: genai.Ptr[int32](1)}}})
	if !errors.As(err, &apiErr) || apiErr.Code != 429 || apiErr.Status != "RESOURCE_EXHAUSTED" {
		t.Fatalf("429: %#v", err)
	}
}
