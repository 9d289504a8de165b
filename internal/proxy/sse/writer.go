package sse

import (
	"bytes"
	"io"
)

// Writer writes events and flushes each one, so that a streaming client
// sees it at once. The first write error sticks: later calls return it.
type Writer struct {
	w     io.Writer
	flush func() error
	buf   []byte
	err   error
	// deferred writers flush only when asked, and pending says they owe one.
	deferred, pending bool
}

// NewWriter returns a Writer on w. When w can flush (an
// http.ResponseWriter can), every event is flushed after it is written.
func NewWriter(w io.Writer) *Writer {
	sw := &Writer{w: w}
	switch f := w.(type) {
	case interface{ FlushError() error }:
		sw.flush = f.FlushError
	case interface{ Flush() error }:
		sw.flush = f.Flush
	case interface{ Flush() }:
		sw.flush = func() error { f.Flush(); return nil }
	}
	return sw
}

// NewDeferredWriter returns a Writer that flushes only on Flush, so that a
// caller can flush once per batch of events that arrived together.
func NewDeferredWriter(w io.Writer) *Writer {
	sw := NewWriter(w)
	sw.deferred = true
	return sw
}

// Flush sends what was written since the last flush.
func (w *Writer) Flush() error {
	if w.err != nil || !w.pending || w.flush == nil {
		return w.err
	}
	w.pending = false
	if err := w.flush(); err != nil {
		w.err = err
	}
	return w.err
}

// WriteRaw writes an event exactly as received, adding the blank line that
// ends it when the upstream left it out.
func (w *Writer) WriteRaw(raw []byte) error {
	switch {
	case bytes.HasSuffix(raw, []byte("\n\n")) || bytes.HasSuffix(raw, []byte("\r\n\r\n")):
		return w.write(raw)
	case bytes.HasSuffix(raw, []byte("\n")):
		w.buf = append(append(w.buf[:0], raw...), '\n')
	default:
		w.buf = append(append(w.buf[:0], raw...), "\n\n"...)
	}
	return w.write(w.buf)
}

// WriteEvent writes an event with the given name (none when empty) and
// data, one "data:" line per line of data.
func (w *Writer) WriteEvent(name string, data []byte) error {
	b := w.buf[:0]
	if name != "" {
		b = append(append(append(b, "event: "...), name...), '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte("\n"))
		b = append(append(append(b, "data: "...), line...), '\n')
		if !more {
			break
		}
		data = rest
	}
	w.buf = append(b, '\n')
	return w.write(w.buf)
}

// Err returns the first error a write or flush returned.
func (w *Writer) Err() error { return w.err }

func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if _, err := w.w.Write(p); err != nil {
		w.err = err
		return err
	}
	w.pending = true
	if w.deferred {
		return nil
	}
	return w.Flush()
}
