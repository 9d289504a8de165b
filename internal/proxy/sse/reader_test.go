package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type ev struct{ name, data, raw string }

func readAll(t testing.TB, r io.Reader) ([]ev, error) {
	t.Helper()
	rd := NewReader(r)
	var out []ev
	for range 100000 {
		e, err := rd.Next()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, ev{string(e.Name), string(e.Data), string(e.Raw)})
	}
	t.Fatal("reader did not stop")
	return nil, nil
}

func TestReader(t *testing.T) {
	cases := []struct {
		name, in string
		want     []ev
	}{
		{"lf", "data: a\n\ndata: b\n\n", []ev{{"", "a", "data: a\n\n"}, {"", "b", "data: b\n\n"}}},
		{"crlf", "event: x\r\ndata: a\r\n\r\n", []ev{{"x", "a", "event: x\r\ndata: a\r\n\r\n"}}},
		{"multiline data", "data: a\ndata:b\ndata:  c\n\n", []ev{{"", "a\nb\n c", "data: a\ndata:b\ndata:  c\n\n"}}},
		{"comment and fields", ": keep-alive\nid: 7\nretry: 10\nevent: e\ndata: d\n\n", []ev{{"e", "d", ": keep-alive\nid: 7\nretry: 10\nevent: e\ndata: d\n\n"}}},
		{"comment only", ": ping\n\n", []ev{{"", "", ": ping\n\n"}}},
		{"final without blank line", "data: a\n\ndata: b\n", []ev{{"", "a", "data: a\n\n"}, {"", "b", "data: b\n"}}},
		{"final without newline", "data: a\n\ndata: b", []ev{{"", "a", "data: a\n\n"}, {"", "b", "data: b"}}},
		{"final crlf without newline", "data: b\r", []ev{{"", "b", "data: b\r"}}},
		{"blank lines between events", "\n\r\ndata: a\n\n\n\ndata: b\n\n\n", []ev{{"", "a", "data: a\n\n"}, {"", "b", "data: b\n\n"}}},
		{"field without colon", "data\n\n", []ev{{"", "", "data\n\n"}}},
		{"empty", "", nil},
		{"colon in value", "data: {\"a\":\"b:c\"}\n\n", []ev{{"", `{"a":"b:c"}`, "data: {\"a\":\"b:c\"}\n\n"}}},
		{"last event name wins", "event: a\nevent: b\ndata: x\n\n", []ev{{"b", "x", "event: a\nevent: b\ndata: x\n\n"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time as well, to cross every buffer boundary.
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				got, err := readAll(t, r)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("got %d events %q, want %d %q", len(got), got, len(tc.want), tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Errorf("event %d = %q, want %q", i, got[i], tc.want[i])
					}
				}
			}
		})
	}
}

func TestReaderLongLine(t *testing.T) {
	long := strings.Repeat("x", 100<<10) // longer than the bufio buffer
	got, err := readAll(t, strings.NewReader("data: "+long+"\n\ndata: y\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].data != long || got[1].data != "y" {
		t.Fatalf("long line not read whole: %d events", len(got))
	}
}

func TestReaderMaxEventSize(t *testing.T) {
	rd := NewReader(strings.NewReader("data: " + strings.Repeat("x", 1000) + "\n\n"))
	rd.MaxEventSize = 100
	if _, err := rd.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v, want ErrEventTooLarge", err)
	}
	if _, err := rd.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("error does not stick: %v", err)
	}
}

// A Reader back from the pool carries nothing of its last stream: not its
// error, its limit, nor a half-read event.
func TestReaderCloseResets(t *testing.T) {
	for range 20 { // the pool may hand back another Reader; enough rounds reuse one
		rd := NewReader(strings.NewReader("event: old\ndata: " + strings.Repeat("x", 1000) + "\n\n"))
		rd.MaxEventSize = 100
		if _, err := rd.Next(); !errors.Is(err, ErrEventTooLarge) {
			t.Fatalf("err = %v, want ErrEventTooLarge", err)
		}
		rd.Close()
		rd = NewReader(strings.NewReader("data: " + strings.Repeat("y", 1000) + "\n\n"))
		e, err := rd.Next()
		if err != nil || len(e.Name) != 0 || string(e.Data) != strings.Repeat("y", 1000) {
			t.Fatalf("reused reader: event %q %q, err %v", e.Name, e.Data, err)
		}
		rd.Close()
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: partial\n"), iotest.ErrReader(boom))
	got, err := readAll(t, r)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if len(got) != 1 || got[0].data != "a" {
		t.Fatalf("events before the error = %q", got)
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	f := &flushCounter{w: &b}
	w := NewWriter(f)
	steps := []func() error{
		func() error { return w.WriteEvent("message_stop", []byte(`{"type":"message_stop"}`)) },
		func() error { return w.WriteEvent("", []byte("a\nb")) },
		func() error { return w.WriteRaw([]byte("data: x\n\n")) },
		func() error { return w.WriteRaw([]byte("data: y\n")) },
		func() error { return w.WriteRaw([]byte("data: z")) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	want := "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\ndata: a\ndata: b\n\ndata: x\n\ndata: y\n\ndata: z\n\n"
	if b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
	if f.n != len(steps) {
		t.Errorf("flushed %d times, want once per event (%d)", f.n, len(steps))
	}
	// What the writer wrote reads back as the same events.
	got, err := readAll(t, strings.NewReader(want))
	if err != nil || len(got) != 5 || got[1].data != "a\nb" || got[0].name != "message_stop" {
		t.Fatalf("round trip = %q, %v", got, err)
	}
}

func TestWriterStickyError(t *testing.T) {
	boom := errors.New("gone")
	w := NewWriter(errWriter{boom})
	if err := w.WriteEvent("", []byte("a")); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if err := w.WriteRaw([]byte("data: b\n\n")); !errors.Is(err, boom) || !errors.Is(w.Err(), boom) {
		t.Fatalf("error does not stick: %v", err)
	}
}

type flushCounter struct {
	w io.Writer
	n int
}

func (f *flushCounter) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f *flushCounter) Flush()                      { f.n++ }

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

func BenchmarkReader(b *testing.B) {
	event := "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word\"},\"finish_reason\":null}]}\n\n"
	stream := strings.Repeat(event, 1000)
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	rd := NewReader(nil)
	src := strings.NewReader(stream)
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			src.Reset(stream)
			rd.br.Reset(src)
			rd.err = nil
		}
		if _, err := rd.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
