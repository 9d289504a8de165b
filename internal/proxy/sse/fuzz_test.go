package sse

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzReader checks the Reader against a direct reading of the SSE rules on
// a whole input: same events, and raw bytes that are the input's own, in order.
func FuzzReader(f *testing.F) {
	f.Add([]byte("event: a\ndata: 1\n\ndata: 2\r\ndata: 3\r\n\r\n: c\n\ndata: last"))
	f.Fuzz(func(t *testing.T, in []byte) {
		want := reference(string(in))
		for _, oneByte := range []bool{false, true} {
			var r = bytes.NewReader(in)
			rd := NewReader(r)
			if oneByte {
				rd = NewReader(iotest.OneByteReader(bytes.NewReader(in)))
			}
			var got []ev
			rest := in
			for range len(in) + 2 {
				e, err := rd.Next()
				if err != nil {
					break
				}
				// Raw is the next stretch of input, after skipped blank lines.
				i := bytes.Index(rest, e.Raw)
				if i < 0 || strings.Trim(string(rest[:i]), "\r\n") != "" {
					t.Fatalf("raw %q is not the next part of the input %q", e.Raw, rest)
				}
				rest = rest[i+len(e.Raw):]
				got = append(got, ev{string(e.Name), string(e.Data), ""})
			}
			if len(got) != len(want) {
				t.Fatalf("got %d events %q, want %d %q", len(got), got, len(want), want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("event %d = %q, want %q", i, got[i], want[i])
				}
			}
		}
	})
}

// reference splits the whole input into lines and events the simple way.
func reference(in string) []ev {
	if in == "" {
		return nil
	}
	in = strings.ReplaceAll(in, "\r\n", "\n")
	lines := strings.Split(in, "\n")
	if strings.HasSuffix(in, "\n") {
		lines = lines[:len(lines)-1]
	}
	if n := len(lines); n > 0 && !strings.HasSuffix(in, "\n") {
		lines[n-1] = strings.TrimSuffix(lines[n-1], "\r")
	}
	var out []ev
	var cur ev
	var data []string
	open := false
	flush := func() {
		if open {
			cur.data = strings.Join(data, "\n")
			out = append(out, cur)
		}
		cur, data, open = ev{}, nil, false
	}
	for i, l := range lines {
		if l == "" && (i < len(lines)-1 || strings.HasSuffix(in, "\n")) {
			flush()
			continue
		}
		open = true
		if strings.HasPrefix(l, ":") {
			continue
		}
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "event":
			cur.name = value
		case "data":
			data = append(data, value)
		}
	}
	flush()
	return out
}
