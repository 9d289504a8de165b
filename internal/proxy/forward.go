package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
)

// attempt is the upstream answer that will be relayed.
type attempt struct {
	resp *http.Response
	tr   provider.Translator
	b    *backend
	sent time.Time
}

// retryable says whether another try may succeed: rate limits and server errors.
func retryable(status int) bool { return status == http.StatusTooManyRequests || status >= 500 }

// send tries the rule's tiers in priority order: within a tier, backends in
// weighted random order with up to Retries retries and exponential backoff;
// when a tier is exhausted the next one is the fallback. The last failed
// answer is relayed if every try fails, so that a 429 reaches the client as a 429.
func (s *Server) send(ctx context.Context, x *exchange, payload []byte) (*attempt, error) {
	var last *attempt
	var lastErr error
	for _, tier := range x.rule.tiers {
		backends := order(tier)
		tries := 1 + int(x.rule.Retries)
		backoff := x.rule.Backoff.Std()
		for i := range tries {
			b := backends[i%len(backends)]
			a, err := s.try(ctx, x, b, payload)
			if err == nil && !retryable(a.resp.StatusCode) {
				discard(last)
				return a, nil
			}
			if err != nil {
				var perr *provider.Error
				if errors.As(err, &perr) || ctx.Err() != nil {
					discard(last)
					return nil, err // a request the upstream cannot serve, or out of time
				}
				lastErr = err
			} else {
				discard(last)
				last = a
			}
			if i < tries-1 && backoff > 0 {
				if !sleep(ctx, backoff<<i) {
					discard(last)
					return nil, ctx.Err()
				}
			}
		}
	}
	if last != nil {
		return last, nil
	}
	if lastErr == nil {
		return nil, &provider.Error{Status: http.StatusServiceUnavailable, Message: "No backend of this route is available."}
	}
	return nil, &provider.Error{Status: http.StatusBadGateway, Message: "The upstream provider could not be reached."}
}

// try makes one upstream call.
func (s *Server) try(ctx context.Context, x *exchange, b *backend, payload []byte) (*attempt, error) {
	model := x.Model
	if b.model != "" {
		model = b.model
	}
	req, tr, err := provider.NewRequest(ctx, b.up.wire, provider.Call{API: x.api, Body: payload, Model: model, Stream: x.Stream})
	if err != nil {
		return nil, err
	}
	req.Header.Set(HeaderRequestID, x.RequestID)
	sent := time.Now()
	resp, err := s.client.Do(req)
	s.metrics.upstream(b.up.Name, resp, time.Since(sent))
	if err != nil {
		return nil, err
	}
	return &attempt{resp: resp, tr: tr, b: b, sent: sent}, nil
}

// discard drains and closes an answer that will not be relayed, so that its
// connection can be reused.
func discard(a *attempt) {
	if a == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(a.resp.Body, 64<<10))
	_ = a.resp.Body.Close()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
