package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The Gemini API (generativelanguage v1beta) wire format.

var geminiFields = set(`contents systemInstruction system_instruction generationConfig generation_config
	safetySettings safety_settings tools toolConfig tool_config cachedContent cached_content labels`)

var geminiConfigFields = set(`maxOutputTokens temperature topP topK stopSequences seed presencePenalty
	frequencyPenalty responseMimeType responseSchema responseJsonSchema candidateCount thinkingConfig
	responseModalities responseLogprobs logprobs mediaResolution speechConfig enableEnhancedCivicAnswers`)

func geminiError(w http.ResponseWriter, code int, status, msg string, details ...any) {
	e := map[string]any{"code": code, "message": msg, "status": status}
	if len(details) > 0 {
		e["details"] = details
	}
	writeJSON(w, code, map[string]any{"error": e})
}

func geminiFault(w http.ResponseWriter, code int) {
	switch code {
	case http.StatusTooManyRequests:
		geminiError(w, code, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
	case http.StatusServiceUnavailable:
		geminiError(w, code, "UNAVAILABLE", "The model is overloaded. Please try again later.")
	default:
		geminiError(w, code, "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting")
	}
}

type geminiContent struct {
	Role  string `json:"role"`
	Parts []struct {
		Text       *string         `json:"text"`
		InlineData json.RawMessage `json:"inlineData"`
	} `json:"parts"`
}

func (s *Server) gemini(w http.ResponseWriter, r *http.Request) {
	model, method, _ := strings.Cut(r.PathValue("call"), ":")
	stream := method == "streamGenerateContent"
	if method != "generateContent" && !stream {
		geminiError(w, 404, "NOT_FOUND", fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for %s.", model, method))
		return
	}
	if !s.opts.NoAuth {
		key := r.Header.Get("x-goog-api-key")
		if key == "" {
			key = r.URL.Query().Get("key")
		}
		switch {
		case key == "":
			geminiError(w, 403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
			return
		case key != s.opts.GeminiKey:
			geminiError(w, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
				map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
					"domain": "googleapis.com", "metadata": map[string]any{"service": "generativelanguage.googleapis.com"}})
			return
		}
	}
	if f := s.currentFault(); f.Status != 0 {
		geminiFault(w, f.Status)
		return
	}
	body, _ := readBody(r)
	fields, unknown, err := decodeStrict(body, geminiFields)
	if err == nil && unknown == "" {
		cfg := fields["generationConfig"]
		if cfg == nil {
			cfg = fields["generation_config"]
		}
		if cfg != nil {
			_, unknown, err = decodeStrict(cfg, geminiConfigFields)
		}
	}
	switch {
	case err != nil:
		geminiError(w, 400, "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
		return
	case unknown != "":
		geminiError(w, 400, "INVALID_ARGUMENT", fmt.Sprintf("Invalid JSON payload received. Unknown name %q: Cannot find field.", unknown))
		return
	}
	var req struct {
		Contents          []geminiContent `json:"contents"`
		SystemInstruction *geminiContent  `json:"systemInstruction"`
		GenerationConfig  struct {
			MaxOutputTokens int64 `json:"maxOutputTokens"`
		} `json:"generationConfig"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		geminiError(w, 400, "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
		return
	}
	if len(req.Contents) == 0 {
		geminiError(w, 400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified\n")
		return
	}
	var prompt int64
	if si := req.SystemInstruction; si != nil {
		for _, p := range si.Parts {
			if p.Text != nil {
				prompt += CountTokens(*p.Text)
			}
		}
	}
	for i, c := range req.Contents {
		if (c.Role != "" && c.Role != "user" && c.Role != "model") || len(c.Parts) == 0 {
			geminiError(w, 400, "INVALID_ARGUMENT", fmt.Sprintf("* GenerateContentRequest.contents[%d]: a role of user or model and at least one part are required\n", i))
			return
		}
		for _, p := range c.Parts {
			if p.Text != nil {
				prompt += CountTokens(*p.Text)
			} else if p.InlineData != nil {
				prompt += 258 // Gemini's count for a small image
			}
		}
	}
	n, cut := s.reply(req.GenerationConfig.MaxOutputTokens)
	finish := "STOP"
	if cut {
		finish = "MAX_TOKENS"
	}
	id := fmt.Sprintf("fake-gemini-%d", s.nextID())
	usage := func(out int) map[string]any {
		u := map[string]any{"promptTokenCount": prompt, "totalTokenCount": prompt + int64(out),
			"promptTokensDetails": []any{map[string]any{"modality": "TEXT", "tokenCount": prompt}}}
		if out > 0 {
			u["candidatesTokenCount"] = out
		}
		if c := s.cached(prompt); c > 0 {
			u["cachedContentTokenCount"] = c
		}
		return u
	}
	candidate := func(text string, finish string) []any {
		c := map[string]any{"content": map[string]any{"parts": []any{map[string]any{"text": text}}, "role": "model"}, "index": 0}
		if finish != "" {
			c["finishReason"] = finish
		}
		return []any{c}
	}
	if !stream {
		writeJSON(w, 200, map[string]any{"candidates": candidate(Reply(n), finish), "usageMetadata": usage(n),
			"modelVersion": model, "responseId": id})
		return
	}
	if r.URL.Query().Get("alt") != "sse" {
		geminiError(w, 400, "INVALID_ARGUMENT", "this fake streams only with alt=sse")
		return
	}
	st := newStream(w, s.currentFault(), "\r\n") // Gemini ends its SSE lines with CRLF
	for i := range n {
		f := ""
		if i == n-1 {
			f = finish
		}
		if !st.event("", map[string]any{"candidates": candidate(piece(i), f), "usageMetadata": usage(i + 1),
			"modelVersion": model, "responseId": id}) {
			return
		}
	}
}
