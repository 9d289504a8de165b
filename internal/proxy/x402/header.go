package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxHeaderBytes bounds the x402 header values this package decodes. Real
// payments are a few hundred bytes to a few KiB; Go's server limits all
// request headers together to 1 MiB by default.
const MaxHeaderBytes = 64 << 10

var (
	// ErrMalformedHeader means a header value is not base64.
	ErrMalformedHeader = errors.New("not base64")
	// ErrInvalidJSON means a header value is base64 but not the expected JSON.
	ErrInvalidJSON = errors.New("not valid JSON")
)

// EncodeHeader marshals v to JSON and encodes it as standard, padded base64,
// the form x402 header values take.
func EncodeHeader(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("x402: encode header: %w", err)
	}
	return base64.StdEncoding.EncodeToString(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// DecodeHeader decodes a base64 header value and unmarshals its JSON into v.
// It accepts standard or URL-safe base64, padded or not, and surrounding
// spaces; it rejects anything else with an error wrapping ErrMalformedHeader,
// and JSON that does not fit v with one wrapping ErrInvalidJSON.
func DecodeHeader(s string, v any) error {
	raw, err := decodeBase64(s)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidJSON, jsonProblem(err))
	}
	return nil
}

// decodeBase64 is the lenient base64 decoding of DecodeHeader.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Trim(s, " \t")
	if s == "" {
		return nil, fmt.Errorf("%w: the value is empty", ErrMalformedHeader)
	}
	if len(s) > MaxHeaderBytes {
		return nil, fmt.Errorf("%w: the value is longer than %d bytes", ErrMalformedHeader, MaxHeaderBytes)
	}
	body := strings.TrimRight(s, "=")
	if len(s)-len(body) > 2 {
		return nil, fmt.Errorf("%w: too much padding", ErrMalformedHeader)
	}
	std, url := false, false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '+' || c == '/':
			std = true
		case c == '-' || c == '_':
			url = true
		default:
			return nil, fmt.Errorf("%w: character %q at offset %d", ErrMalformedHeader, c, i)
		}
	}
	if std && url {
		return nil, fmt.Errorf("%w: mixes the standard and URL-safe alphabets", ErrMalformedHeader)
	}
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	raw, err := enc.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedHeader, err)
	}
	return raw, nil
}

// jsonProblem describes a JSON error without Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %s must not be a JSON %s", te.Field, te.Value)
		}
		return fmt.Sprintf("a JSON %s is not the expected value", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	return err.Error()
}
