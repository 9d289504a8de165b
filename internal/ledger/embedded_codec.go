package ledger

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// The Embedded ledger's records are binary: every request writes one
// journal entry and one settled reservation, and reads every grant of its
// prepaid accounts, so their encoding is on the hot path. Integers are
// varints; strings and lists are prefixed by their length.

var errCorrupt = errors.New("ledger: corrupt record")

// encoder appends to a buffer.
type encoder struct{ b []byte }

func (e *encoder) int(v int64)     { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) uint(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) string(s string) { e.uint(uint64(len(s))); e.b = append(e.b, s...) }

// decoder reads what encoder wrote; its first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	return d.advance(n, v)
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	return uint64(d.advance(n, int64(v)))
}

func (d *decoder) advance(n int, v int64) int64 {
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a list length, bounded by what is left to read.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (e *encoder) usage(u Usage) {
	e.int(u.Requests)
	e.int(u.InputTokens)
	e.int(u.CachedInputTokens)
	e.int(u.OutputTokens)
}

func (d *decoder) usage() Usage {
	return Usage{Requests: d.int(), InputTokens: d.int(), CachedInputTokens: d.int(), OutputTokens: d.int()}
}

// remaining encodes an admitted decision, the only kind a settled
// reservation has: what each hold left.
func (e *encoder) remaining(dec Decision) {
	e.uint(uint64(len(dec.Remaining)))
	for _, r := range dec.Remaining {
		e.int(int64(r))
	}
}

func (d *decoder) admitted() Decision {
	dec := Decision{Admitted: true, Refused: -1, Remaining: make([]money.Micros, d.count())}
	for i := range dec.Remaining {
		dec.Remaining[i] = money.Micros(d.int())
	}
	return dec
}

func (e *encoder) account(a accountRecord) {
	e.string(a.Key)
	e.int(int64(a.Kind))
	e.int(a.Limit)
	e.string(string(a.Period))
	e.string(a.Zone)
	e.int(int64(a.Rolling))
}

func (d *decoder) account() accountRecord {
	return accountRecord{Key: d.string(), Kind: Kind(d.int()), Limit: d.int(), Period: Period(d.string()), Zone: d.string(), Rolling: time.Duration(d.int())}
}

func encodeEntry(b []byte, en journalEntry) []byte {
	e := encoder{b}
	kind := byte('s')
	if en.Charge {
		kind = 'c'
	}
	e.b = append(e.b, kind)
	e.string(en.ID)
	e.int(en.At)
	e.usage(en.Usage)
	e.uint(uint64(len(en.Holds)))
	for _, h := range en.Holds {
		e.account(h.Account)
		e.int(h.Amount)
	}
	if !en.Charge {
		e.remaining(*en.Decision)
	}
	return e.b
}

func decodeEntry(b []byte) (journalEntry, error) {
	if len(b) == 0 || (b[0] != 's' && b[0] != 'c') {
		return journalEntry{}, errCorrupt
	}
	d := decoder{b: b[1:]}
	en := journalEntry{Charge: b[0] == 'c', ID: d.string(), At: d.int(), Usage: d.usage()}
	en.Holds = make([]holdRecord, d.count())
	for i := range en.Holds {
		en.Holds[i] = holdRecord{Account: d.account(), Amount: d.int()}
	}
	if !en.Charge {
		dec := d.admitted()
		en.Decision = &dec
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail()
	}
	return en, d.err
}

// encodeGrant stores a grant under its ID.
func encodeGrant(g liveGrant) []byte {
	e := encoder{make([]byte, 0, 24)}
	e.int(g.Amount)
	e.int(g.Used)
	e.int(g.ExpiresMS)
	return e.b
}

func decodeGrant(id string, b []byte) (liveGrant, error) {
	d := decoder{b: b}
	g := liveGrant{ID: id, Amount: d.int(), Used: d.int(), ExpiresMS: d.int()}
	return g, d.err
}
