package fakeprovider

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
)

// The OpenAI wire format, also served under Azure OpenAI's deployment URLs.

var openAIChatFields = set(`model messages max_tokens max_completion_tokens temperature top_p n stream
	stream_options stop presence_penalty frequency_penalty logit_bias logprobs top_logprobs user seed
	response_format tools tool_choice parallel_tool_calls functions function_call store metadata
	service_tier modalities audio prediction reasoning_effort web_search_options safety_identifier
	prompt_cache_key verbosity`)

var openAICompletionFields = set(`model prompt suffix max_tokens temperature top_p n stream stream_options
	logprobs echo stop presence_penalty frequency_penalty best_of logit_bias user seed`)

var openAIEmbeddingFields = set(`model input encoding_format dimensions user`)

func openAIError(w http.ResponseWriter, status int, msg, typ string, param, code any) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": param, "code": code}})
}

// openAIFault answers an injected status as OpenAI does.
func openAIFault(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		openAIError(w, status, "Rate limit reached for requests. Please try again in 1s.", "requests", nil, "rate_limit_exceeded")
	case http.StatusInternalServerError:
		openAIError(w, status, "The server had an error while processing your request. Sorry about that!", "server_error", nil, nil)
	default:
		openAIError(w, status, http.StatusText(status), "server_error", nil, nil)
	}
}

// openAIRequest is an OpenAI-wire request being served.
type openAIRequest struct {
	model  string
	fields map[string]json.RawMessage
}

type openAIHandler func(w http.ResponseWriter, r *http.Request, req openAIRequest)

// openAI checks the bearer key and the fault, then serves h.
func (s *Server) openAI(h openAIHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.opts.NoAuth {
			key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			switch {
			case !ok || key == "":
				openAIError(w, 401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", "invalid_request_error", nil, nil)
				return
			case key != s.opts.OpenAIKey:
				openAIError(w, 401, "Incorrect API key provided: "+mask(key)+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", nil, "invalid_api_key")
				return
			}
		}
		s.serveOpenAI(w, r, "", h)
	}
}

// mask hides a key as OpenAI does, keeping its ends.
func mask(key string) string {
	if len(key) < 8 {
		return "***"
	}
	return key[:3] + "***" + key[len(key)-4:]
}

func (s *Server) serveOpenAI(w http.ResponseWriter, r *http.Request, deployment string, h openAIHandler) {
	if f := s.currentFault(); f.Status != 0 {
		openAIFault(w, f.Status)
		return
	}
	body, _ := readBody(r)
	known := openAIChatFields
	switch {
	case strings.HasSuffix(r.URL.Path, "/completions") && !strings.HasSuffix(r.URL.Path, "/chat/completions"):
		known = openAICompletionFields
	case strings.HasSuffix(r.URL.Path, "/embeddings"):
		known = openAIEmbeddingFields
	}
	fields, unknown, err := decodeStrict(body, known)
	switch {
	case err != nil:
		openAIError(w, 400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", "invalid_request_error", nil, nil)
		return
	case unknown != "":
		openAIError(w, 400, "Unrecognized request argument supplied: "+unknown, "invalid_request_error", nil, nil)
		return
	}
	var model string
	_ = json.Unmarshal(fields["model"], &model)
	if deployment != "" {
		model = deployment
	}
	if model == "" {
		openAIError(w, 400, "you must provide a model parameter", "invalid_request_error", nil, nil)
		return
	}
	var stream bool
	_ = json.Unmarshal(fields["stream"], &stream)
	if _, ok := fields["stream_options"]; ok && !stream && string(fields["stream_options"]) != "null" {
		openAIError(w, 400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "invalid_request_error", "stream_options", nil)
		return
	}
	h(w, r, openAIRequest{model: model, fields: fields})
}

func (s *Server) azure(w http.ResponseWriter, r *http.Request) {
	var h openAIHandler
	switch r.PathValue("op") {
	case "chat/completions":
		h = s.chat
	case "completions":
		h = s.completions
	case "embeddings":
		h = s.embeddings
	}
	if h == nil || r.URL.Query().Get("api-version") == "" {
		writeJSON(w, 404, map[string]any{"error": map[string]any{"code": "404", "message": "Resource not found"}})
		return
	}
	if !s.opts.NoAuth && r.Header.Get("api-key") != s.opts.AzureKey {
		writeJSON(w, 401, map[string]any{"error": map[string]any{"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})
		return
	}
	s.serveOpenAI(w, r, r.PathValue("deployment"), h)
}

func readBody(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

// openAIText counts the words of a message content or a prompt: a string,
// an array of strings or of parts with text.
func openAIText(raw json.RawMessage) int64 {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return CountTokens(s)
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return 0
	}
	var n int64
	for _, it := range items {
		var p struct {
			Text string `json:"text"`
		}
		var tokens []int64
		switch {
		case json.Unmarshal(it, &s) == nil:
			n += CountTokens(s)
		case json.Unmarshal(it, &tokens) == nil:
			n += int64(len(tokens))
		case json.Unmarshal(it, &p) == nil:
			n += CountTokens(p.Text)
		default:
			n++ // a token id
		}
	}
	return n
}

func maxTokens(fields map[string]json.RawMessage, names ...string) int64 {
	for _, n := range names {
		var v int64
		if json.Unmarshal(fields[n], &v) == nil && v > 0 {
			return v
		}
	}
	return 0
}

func (s *Server) openAIUsage(prompt, completion int64) map[string]any {
	return map[string]any{
		"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
		"prompt_tokens_details":     map[string]any{"cached_tokens": s.cached(prompt), "audio_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
	}
}

func streamFlags(fields map[string]json.RawMessage) (stream, usage bool) {
	_ = json.Unmarshal(fields["stream"], &stream)
	var so struct {
		IncludeUsage bool `json:"include_usage"`
	}
	_ = json.Unmarshal(fields["stream_options"], &so)
	return stream, stream && so.IncludeUsage
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request, req openAIRequest) {
	var messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(req.fields["messages"], &messages); err != nil || len(messages) == 0 {
		openAIError(w, 400, "Missing required parameter: 'messages'.", "invalid_request_error", "messages", "missing_required_parameter")
		return
	}
	var prompt int64
	for _, m := range messages {
		prompt += openAIText(m.Content)
	}
	n, cut := s.reply(maxTokens(req.fields, "max_completion_tokens", "max_tokens"))
	finish := "stop"
	if cut {
		finish = "length"
	}
	id := fmt.Sprintf("chatcmpl-fake%d", s.nextID())
	stream, withUsage := streamFlags(req.fields)
	if !stream {
		writeJSON(w, 200, map[string]any{
			"id": id, "object": "chat.completion", "created": Created, "model": req.model,
			"choices": []any{map[string]any{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": Reply(n), "refusal": nil, "annotations": []any{}},
				"logprobs":      nil,
				"finish_reason": finish,
			}},
			"usage": s.openAIUsage(prompt, int64(n)), "service_tier": "default", "system_fingerprint": "fp_fake",
		})
		return
	}
	st := newStream(w, s.currentFault(), "\n")
	chunk := func(choices []any, usage any) map[string]any {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": Created, "model": req.model,
			"service_tier": "default", "system_fingerprint": "fp_fake", "choices": choices}
		if withUsage {
			c["usage"] = usage
		}
		return c
	}
	choice := func(delta map[string]any, finish any) []any {
		return []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}
	}
	if !st.event("", chunk(choice(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil), nil)) {
		return
	}
	for i := range n {
		if !st.event("", chunk(choice(map[string]any{"content": piece(i)}, nil), nil)) {
			return
		}
	}
	if !st.event("", chunk(choice(map[string]any{}, finish), nil)) {
		return
	}
	if withUsage && !st.event("", chunk([]any{}, s.openAIUsage(prompt, int64(n)))) {
		return
	}
	if st.event("", []byte("[DONE]")) {
		sleep(r.Context(), s.opts.StreamEndDelay)
		if s.opts.StreamEndHold != nil {
			select {
			case <-s.opts.StreamEndHold:
			case <-r.Context().Done():
			}
		}
	}
}

// piece is the i-th word of a reply as streamed, with its leading space.
func piece(i int) string {
	if i == 0 {
		return Word(0)
	}
	return " " + Word(i)
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request, req openAIRequest) {
	raw, ok := req.fields["prompt"]
	if !ok {
		openAIError(w, 400, "Missing required parameter: 'prompt'.", "invalid_request_error", "prompt", "missing_required_parameter")
		return
	}
	prompt := openAIText(raw)
	n, cut := s.reply(maxTokens(req.fields, "max_tokens"))
	finish := "stop"
	if cut {
		finish = "length"
	}
	id := fmt.Sprintf("cmpl-fake%d", s.nextID())
	stream, withUsage := streamFlags(req.fields)
	usage := map[string]any{"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + int64(n)}
	if !stream {
		writeJSON(w, 200, map[string]any{
			"id": id, "object": "text_completion", "created": Created, "model": req.model, "system_fingerprint": "fp_fake",
			"choices": []any{map[string]any{"text": Reply(n), "index": 0, "logprobs": nil, "finish_reason": finish}},
			"usage":   usage,
		})
		return
	}
	st := newStream(w, s.currentFault(), "\n")
	chunk := func(choices []any, u any) map[string]any {
		c := map[string]any{"id": id, "object": "text_completion", "created": Created, "model": req.model, "choices": choices}
		if withUsage {
			c["usage"] = u
		}
		return c
	}
	for i := range n {
		var f any
		if i == n-1 {
			f = finish
		}
		if !st.event("", chunk([]any{map[string]any{"text": piece(i), "index": 0, "logprobs": nil, "finish_reason": f}}, nil)) {
			return
		}
	}
	if withUsage && !st.event("", chunk([]any{}, usage)) {
		return
	}
	st.event("", []byte("[DONE]"))
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request, req openAIRequest) {
	raw := req.fields["input"]
	var inputs []json.RawMessage
	if json.Unmarshal(raw, &inputs) != nil || (len(inputs) > 0 && inputs[0][0] != '"' && inputs[0][0] != '[') {
		inputs = []json.RawMessage{raw} // one string, or one array of token ids
	}
	if len(raw) == 0 || len(inputs) == 0 {
		openAIError(w, 400, "'input' is a required property", "invalid_request_error", nil, nil)
		return
	}
	var format string
	_ = json.Unmarshal(req.fields["encoding_format"], &format)
	var prompt int64
	data := make([]any, len(inputs))
	for i, in := range inputs {
		prompt += openAIText(in)
		vec := Embedding(string(in), s.opts.EmbeddingDims)
		var emb any = vec
		if format == "base64" {
			b := make([]byte, 4*len(vec))
			for j, f := range vec {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	writeJSON(w, 200, map[string]any{"object": "list", "data": data, "model": req.model,
		"usage": map[string]any{"prompt_tokens": prompt, "total_tokens": prompt}})
}

// Embedding is the fake's deterministic embedding of an input's JSON text.
func Embedding(input string, dims int) []float32 {
	vec := make([]float32, dims)
	for i := range vec {
		h := fnv.New32a()
		fmt.Fprintf(h, "%d:%s", i, input)
		vec[i] = float32(h.Sum32()%2001)/1000 - 1
	}
	return vec
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("x-api-key") != "" { // the Anthropic SDK's list
		if !s.opts.NoAuth && r.Header.Get("x-api-key") != s.opts.AnthropicKey {
			anthropicError(w, 401, "authentication_error", "invalid x-api-key")
			return
		}
		data := make([]any, len(s.opts.Models))
		for i, m := range s.opts.Models {
			data[i] = map[string]any{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
		}
		writeJSON(w, 200, map[string]any{"data": data, "has_more": false, "first_id": s.opts.Models[0], "last_id": s.opts.Models[len(s.opts.Models)-1]})
		return
	}
	if !s.opts.NoAuth && r.Header.Get("Authorization") != "Bearer "+s.opts.OpenAIKey {
		openAIError(w, 401, "Incorrect API key provided: "+mask(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))+".", "invalid_request_error", nil, "invalid_api_key")
		return
	}
	data := make([]any, len(s.opts.Models))
	for i, m := range s.opts.Models {
		data[i] = map[string]any{"id": m, "object": "model", "created": Created, "owned_by": "fake"}
	}
	writeJSON(w, 200, map[string]any{"object": "list", "data": data})
}
