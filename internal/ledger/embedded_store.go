package ledger

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Layout of the bbolt file:
//
//	reservations/<id>            expiry ms, then the remaining amounts it was admitted with, once settled
//	charges/<id>                 expiry ms: the charge id was seen
//	accounts/<key>/debt          spend no grant covered, int64
//	accounts/<key>/grants/<id>   amount, used and expiry ms, while it may count
//	accounts/<key>/granted/<id>  empty: every grant id ever added
//	accounts/<key>/counters/<counter key>  spent and usage, 5 int64
var (
	bucketReservations = []byte("reservations")
	bucketCharges      = []byte("charges")
	bucketExpiry       = []byte("expiry") // an index earlier versions kept; deleted on open
	bucketAccounts     = []byte("accounts")
	bucketGrants       = []byte("grants")
	bucketGranted      = []byte("granted")
	bucketCounters     = []byte("counters")
	keyDebt            = []byte("debt")
)

// pruneBatch is how many id records prune looks at per write beyond those
// the write adds, so that a backlog goes down but a write never stalls on it.
const pruneBatch = 64

func u64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func i64(b []byte) int64 {
	if len(b) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// accountTx is one account's buckets inside a transaction. Its buckets are
// nil in a read-only transaction when the account was never written.
type accountTx struct {
	b *bolt.Bucket
}

func openAccount(tx *bolt.Tx, key string) (accountTx, error) {
	root := tx.Bucket(bucketAccounts)
	if !tx.Writable() {
		return accountTx{b: root.Bucket([]byte(key))}, nil
	}
	b, err := root.CreateBucketIfNotExists([]byte(key))
	if err != nil {
		return accountTx{}, err
	}
	for _, name := range [][]byte{bucketGrants, bucketGranted, bucketCounters} {
		if _, err := b.CreateBucketIfNotExists(name); err != nil {
			return accountTx{}, err
		}
	}
	return accountTx{b: b}, nil
}

func (a accountTx) sub(name []byte) *bolt.Bucket {
	if a.b == nil {
		return nil
	}
	return a.b.Bucket(name)
}

// draw takes prepaid spend from the grants, in order, as of each spend's
// time; what they cannot cover becomes debt.
func (a accountTx) draw(draws []draw) error {
	gs, err := a.grants(firstMS(draws))
	if err != nil {
		return err
	}
	if debt := consume(gs, draws...); debt > 0 {
		if err := a.b.Put(keyDebt, u64(a.debt()+debt)); err != nil {
			return err
		}
	}
	return a.saveGrants(gs, draws[len(draws)-1].atMS)
}

// firstMS is the earliest time of draws: grants live then may count for them.
func firstMS(draws []draw) int64 {
	first := draws[0].atMS
	for _, d := range draws {
		first = min(first, d.atMS)
	}
	return first
}

func (a accountTx) debt() int64 {
	if a.b == nil {
		return 0
	}
	return i64(a.b.Get(keyDebt))
}

// grants returns the grants live at nowMS, in the order spend draws them.
func (a accountTx) grants(nowMS int64) ([]liveGrant, error) {
	gs, err := storedGrants(a.sub(bucketGrants))
	return liveGrants(gs, nowMS), err
}

// storedGrants decodes every grant of a grants bucket, in draw order.
func storedGrants(b *bolt.Bucket) ([]liveGrant, error) {
	if b == nil {
		return nil, nil
	}
	var gs []liveGrant
	err := b.ForEach(func(k, v []byte) error {
		g, err := decodeGrant(string(k), v)
		gs = append(gs, g)
		return err
	})
	sortGrants(gs)
	return gs, err
}

// liveGrants copies the grants of gs live at nowMS: spend is drawn on the copy.
func liveGrants(gs []liveGrant, nowMS int64) []liveGrant {
	return appendLiveGrants(make([]liveGrant, 0, len(gs)), gs, nowMS)
}

// appendLiveGrants is liveGrants appending to out.
func appendLiveGrants(out, gs []liveGrant, nowMS int64) []liveGrant {
	for _, g := range gs {
		if g.live(nowMS) {
			out = append(out, g)
		}
	}
	return out
}

// saveGrants stores grants after consumption and drops every grant that no
// longer counts at nowMS, so that reads stay proportional to live grants.
func (a accountTx) saveGrants(gs []liveGrant, nowMS int64) error {
	b := a.sub(bucketGrants)
	for _, g := range gs {
		if err := b.Put([]byte(g.ID), encodeGrant(g)); err != nil {
			return err
		}
	}
	var dead [][]byte
	err := b.ForEach(func(k, v []byte) error {
		g, err := decodeGrant(string(k), v)
		if err != nil {
			return err
		}
		if !g.live(nowMS) {
			dead = append(dead, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return deleteKeys(b, dead)
}

// payDebt draws the debt from live grants.
func (a accountTx) payDebt(nowMS int64) error {
	debt := a.debt()
	if debt <= 0 {
		return nil
	}
	gs, err := a.grants(nowMS)
	if err != nil {
		return err
	}
	left := consume(gs, draw{nowMS, debt})
	if err := a.b.Put(keyDebt, u64(left)); err != nil {
		return err
	}
	return a.saveGrants(gs, nowMS)
}

// counts are the values of one counter.
type counts struct {
	spent int64
	usage Usage
}

func (c counts) encode() []byte {
	b := make([]byte, 0, 40)
	for _, v := range []int64{c.spent, c.usage.Requests, c.usage.InputTokens, c.usage.CachedInputTokens, c.usage.OutputTokens} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func decodeCounts(b []byte) counts {
	if len(b) < 40 {
		return counts{}
	}
	return counts{spent: i64(b), usage: Usage{
		Requests: i64(b[8:]), InputTokens: i64(b[16:]), CachedInputTokens: i64(b[24:]), OutputTokens: i64(b[32:]),
	}}
}

// fileAccount is an account as the file has it, decoded, in the read
// transaction snapshot. Memory keeps it until the next commit (see
// memHolds.file), so that most reads need no transaction.
type fileAccount struct {
	snapshot int
	grants   []liveGrant // every grant stored, in draw order
	debt     int64
	counters map[string]counts
}

func readAccount(tx *bolt.Tx, key string) (*fileAccount, error) {
	a, _ := openAccount(tx, key) // read-only: no error
	f := &fileAccount{snapshot: tx.ID(), debt: a.debt(), counters: map[string]counts{}}
	var err error
	if f.grants, err = storedGrants(a.sub(bucketGrants)); err != nil {
		return nil, err
	}
	if b := a.sub(bucketCounters); b != nil {
		err = b.ForEach(func(k, v []byte) error {
			f.counters[string(k)] = decodeCounts(v)
			return nil
		})
	}
	return f, err
}

// read returns the counters of the window that contains now, summed, and
// for rolling windows when the oldest counted spend ages out.
func (f *fileAccount) read(w Window, now time.Time) (total counts, oldest time.Time) {
	for _, c := range w.readCounters(now) {
		v := f.counters[c.key]
		total.spent += v.spent
		total.usage = addUsage(total.usage, v.usage)
		if v.spent > 0 && oldest.IsZero() {
			oldest = c.until
		}
	}
	return total, oldest
}

// add commits spend and usage to the counter of now, and drops rolling
// buckets that no read of this window can reach any more.
func (a accountTx) add(w Window, now time.Time, spent int64, u Usage) error {
	b := a.sub(bucketCounters)
	c := w.writeCounter(now)
	v := decodeCounts(b.Get([]byte(c.key)))
	v.spent += spent
	v.usage = addUsage(v.usage, u)
	if err := b.Put([]byte(c.key), v.encode()); err != nil {
		return err
	}
	if w.Rolling <= 0 {
		return nil
	}
	prefix, first := []byte(w.rollingPrefix()), []byte(w.readCounters(now)[0].key)
	var dead [][]byte
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, first) < 0; k, _ = cur.Next() {
		dead = append(dead, bytes.Clone(k))
	}
	return deleteKeys(b, dead)
}

func addUsage(a, b Usage) Usage {
	return Usage{
		Requests:          a.Requests + b.Requests,
		InputTokens:       a.InputTokens + b.InputTokens,
		CachedInputTokens: a.CachedInputTokens + b.CachedInputTokens,
		OutputTokens:      a.OutputTokens + b.OutputTokens,
	}
}

// deleteKeys deletes after iterating, because deleting under a bbolt
// cursor can skip the next key.
func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
