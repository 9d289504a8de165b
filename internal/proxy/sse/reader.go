// Package sse reads and writes server-sent events (text/event-stream), the
// streaming format of the LLM APIs the proxy speaks. The Reader yields one
// event at a time from an upstream body without buffering the stream, and
// keeps each event's raw bytes so that a proxy can forward it unchanged.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
)

// DefaultMaxEventSize bounds one event so that a broken or hostile upstream
// cannot make the reader buffer without limit. Inline images in Gemini
// replies are the largest legitimate events.
const DefaultMaxEventSize = 16 << 20

// ErrEventTooLarge is returned when an event exceeds the Reader's limit.
var ErrEventTooLarge = errors.New("sse: event too large")

// Event is one event of a stream. Its slices point into the Reader's
// buffers and stay valid only until the next call to Next.
type Event struct {
	// Name is the value of the last "event:" field, empty when there is none.
	Name []byte
	// Data is the values of the "data:" fields joined by '\n'. It is empty
	// for an event without data, such as a comment-only keep-alive, which
	// the SSE specification says not to dispatch.
	Data []byte
	// Raw is every byte of the event as received, from its first line
	// through the blank line that ends it (absent for a final event that
	// the stream did not terminate). Blank lines between events are not
	// part of any event.
	Raw []byte
}

// Reader reads events from a stream. Lines may end in "\n" or "\r\n"; a
// lone "\r", which no LLM API sends, is not a line end.
type Reader struct {
	// MaxEventSize bounds the raw size of one event; zero means
	// DefaultMaxEventSize.
	MaxEventSize int

	br   *bufio.Reader
	raw  []byte
	name []byte
	data []byte // data of a multi-line event
	err  error

	// One data line, the usual case, is not copied: it is raw[d0:d1].
	d0, d1 int
	lines  int
}

// readers keeps Readers, whose buffers are most of what relaying a stream
// allocates, from one stream to the next.
var readers = sync.Pool{New: func() any { return &Reader{br: bufio.NewReaderSize(nil, 16<<10)} }}

// maxKept bounds the buffers a Reader takes back to the pool: one huge
// event must not pin its memory for good.
const maxKept = 64 << 10

// NewReader returns a Reader that reads events from r. Close gives its
// buffers back when the stream is done.
func NewReader(r io.Reader) *Reader {
	rd := readers.Get().(*Reader)
	rd.br.Reset(r)
	return rd
}

// Close returns the Reader to the pool. Neither it nor an Event it returned
// may be used afterwards.
func (r *Reader) Close() {
	if cap(r.raw) > maxKept || cap(r.data) > maxKept || cap(r.name) > maxKept {
		return
	}
	r.br.Reset(nil)
	*r = Reader{br: r.br, raw: r.raw[:0], name: r.name[:0], data: r.data[:0]}
	readers.Put(r)
}

// Next returns the next event. At the end of the stream it returns io.EOF;
// a final event that lacks its terminating blank line is still returned
// first. Any other error is the underlying reader's (or ErrEventTooLarge);
// the incomplete event it interrupted is dropped.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	r.raw, r.name, r.data, r.lines = r.raw[:0], r.name[:0], r.data[:0], 0
	for {
		start := len(r.raw)
		line, terminated, err := r.readLine()
		if err != nil && err != io.EOF {
			r.err = err
			return Event{}, err
		}
		if len(line) == 0 && terminated {
			if start == 0 {
				r.raw = r.raw[:0] // a blank line between events belongs to none
				continue
			}
			return r.event(), nil
		}
		if len(line) > 0 {
			r.field(line, start)
		}
		if err == io.EOF {
			r.err = io.EOF
			if len(r.raw) == 0 {
				return Event{}, io.EOF
			}
			return r.event(), nil
		}
	}
}

func (r *Reader) event() Event {
	e := Event{Name: r.name, Raw: r.raw}
	switch {
	case r.lines == 1:
		e.Data = r.raw[r.d0:r.d1]
	case r.lines > 1:
		e.Data = r.data
	}
	return e
}

// field applies one non-blank line, which starts at raw[start], to the
// event being built.
func (r *Reader) field(line []byte, start int) {
	if line[0] == ':' {
		return // comment
	}
	name, value, _ := bytes.Cut(line, []byte(":"))
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(name) {
	case "event":
		r.name = append(r.name[:0], value...)
	case "data":
		r.lines++
		switch r.lines {
		case 1:
			r.d0 = start + len(line) - len(value)
			r.d1 = r.d0 + len(value)
		case 2:
			r.data = append(append(append(r.data[:0], r.raw[r.d0:r.d1]...), '\n'), value...)
		default:
			r.data = append(append(r.data, '\n'), value...)
		}
	}
}

// readLine appends the next line, terminator included, to r.raw and returns
// it without its terminator. terminated is false for a last line that ends
// at EOF without a newline.
func (r *Reader) readLine() (line []byte, terminated bool, err error) {
	start := len(r.raw)
	max := r.MaxEventSize
	if max <= 0 {
		max = DefaultMaxEventSize
	}
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.raw)+len(chunk) > max {
			return nil, false, ErrEventTooLarge
		}
		r.raw = append(r.raw, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		line = r.raw[start:]
		if err != nil {
			if err == io.EOF && len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			return line, false, err
		}
		line = line[:len(line)-1]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		return line, true, nil
	}
}
