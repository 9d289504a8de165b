package ledger

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The Embedded ledger keeps the id of every settled reservation and charge
// for the id retention, to answer retries. The ids the proxy makes (32 hex
// digits, the first 16 a time in nanoseconds) are kept in chunks, one value
// per 2^20 ns (1 ms) of ids: under load a commit then writes a value per
// millisecond rather than a key per request, pruning reads a key per chunk,
// and a request that settles late rewrites a small value. Any other id gets
// a key of its own.
//
// A chunk's value is the latest expiry of its records (8 bytes, as an id
// key's value starts, so that pruning reads both alike), then its records:
// the id after the chunk's prefix, the value's length and the value an id
// key would have.

var (
	bucketReservationChunks = []byte("reservation-chunks")
	bucketChargeChunks      = []byte("charge-chunks")
)

const (
	chunkedIDLen = 32
	chunkPrefix  = 11 // hex digits: the top 44 bits of the nanoseconds
	chunkSuffix  = chunkedIDLen - chunkPrefix
)

// chunked reports whether id is kept in a chunk.
func chunked(id string) bool {
	if len(id) != chunkedIDLen {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// idStore is where one kind of id (reservations or charges) is kept.
type idStore struct {
	keys, chunks *bolt.Bucket
}

func idStoreOf(tx *bolt.Tx, charge bool) idStore {
	if charge {
		return idStore{tx.Bucket(bucketCharges), tx.Bucket(bucketChargeChunks)}
	}
	return idStore{tx.Bucket(bucketReservations), tx.Bucket(bucketReservationChunks)}
}

// get returns what is stored for id, expired or not. A proxy id may also
// have a key of its own, written before chunks were.
func (s idStore) get(id string) []byte {
	if chunked(id) {
		if chunk := s.chunks.Get([]byte(id[:chunkPrefix])); len(chunk) >= 8 {
			if v, ok := findRecord(chunk[8:], id[chunkPrefix:]); ok {
				return v
			}
		}
	}
	return s.keys.Get([]byte(id))
}

// findRecord finds the record of suffix among a chunk's records.
func findRecord(recs []byte, suffix string) ([]byte, bool) {
	for len(recs) > chunkSuffix {
		s := recs[:chunkSuffix]
		n, k := binary.Uvarint(recs[chunkSuffix:])
		start := chunkSuffix + k
		if k <= 0 || uint64(len(recs)-start) < n {
			return nil, false
		}
		end := start + int(n)
		if string(s) == suffix {
			return recs[start:end], true
		}
		recs = recs[end:]
	}
	return nil, false
}

// lastID is the highest id stored.
func (s idStore) lastID() string {
	last, _ := s.keys.Cursor().Last()
	k, v := s.chunks.Cursor().Last()
	if len(v) < 8 {
		return string(last)
	}
	best := ""
	for recs := v[8:]; len(recs) > chunkSuffix; {
		n, w := binary.Uvarint(recs[chunkSuffix:])
		if w <= 0 || uint64(len(recs)-chunkSuffix-w) < n {
			break
		}
		best = max(best, string(recs[:chunkSuffix]))
		recs = recs[chunkSuffix+w+int(n):]
	}
	return max(string(last), string(k)+best)
}

// idWriter collects the ids one commit stores: keys are put at once,
// chunks at the end, once each.
type idWriter struct {
	tx *bolt.Tx
	// arena holds the keys and values put, which bbolt reads at the
	// commit (a grown arena leaves the old array to what points into it).
	arena []byte
	// pending are the chunks' new records, by bucket and prefix.
	pending map[pendingKey]*pendingChunk
	order   []pendingKey
	// value is scratch for encoding the value put.
	value []byte
}

type pendingKey struct {
	charge bool
	prefix string
}

type pendingChunk struct {
	expiresMS int64
	recs      []byte
}

func newIDWriter(tx *bolt.Tx, entries int) *idWriter {
	return &idWriter{tx: tx, arena: make([]byte, 0, 48*entries), pending: map[pendingKey]*pendingChunk{}}
}

// get returns what the file or this commit holds for id.
func (w *idWriter) get(charge bool, id string) []byte {
	if chunked(id) {
		if p := w.pending[pendingKey{charge, id[:chunkPrefix]}]; p != nil {
			if v, ok := findRecord(p.recs, id[chunkPrefix:]); ok {
				return v
			}
		}
	}
	return idStoreOf(w.tx, charge).get(id)
}

// put stores id's value, which expires at expiresMS.
func (w *idWriter) put(charge bool, id string, expiresMS int64, value []byte) error {
	if !chunked(id) {
		start := len(w.arena)
		w.arena = append(append(w.arena, id...), value...)
		key := w.arena[start : start+len(id) : start+len(id)]
		return idStoreOf(w.tx, charge).keys.Put(key, w.arena[start+len(id):len(w.arena):len(w.arena)])
	}
	k := pendingKey{charge, id[:chunkPrefix]}
	p := w.pending[k]
	if p == nil {
		p = &pendingChunk{}
		w.pending[k] = p
		w.order = append(w.order, k)
	}
	p.expiresMS = max(p.expiresMS, expiresMS)
	p.recs = append(binary.AppendUvarint(append(p.recs, id[chunkPrefix:]...), uint64(len(value))), value...)
	return nil
}

// chunks reports how many chunks this commit writes.
func (w *idWriter) chunks() int { return len(w.order) }

// finish writes the chunks: each one's stored records, then the new ones.
func (w *idWriter) finish() error {
	slices.SortFunc(w.order, func(a, b pendingKey) int {
		return cmp.Or(cmp.Compare(b2i(a.charge), b2i(b.charge)), strings.Compare(a.prefix, b.prefix))
	})
	for _, k := range w.order {
		p := w.pending[k]
		b := idStoreOf(w.tx, k.charge).chunks
		old := b.Get([]byte(k.prefix))
		expires := p.expiresMS
		if len(old) >= 8 {
			expires, old = max(expires, i64(old)), old[8:]
		}
		v := make([]byte, 0, 8+len(old)+len(p.recs))
		v = append(append(binary.BigEndian.AppendUint64(v, uint64(expires)), old...), p.recs...)
		if err := b.Put([]byte(k.prefix), v); err != nil {
			return err
		}
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
