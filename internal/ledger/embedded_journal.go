package ledger

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// journal is the Embedded ledger's write-ahead log of spend. Settle and
// Charge append one record to it with write(2) before they return, which
// survives the process being killed at any point; a flusher then applies
// the records in batches to the bbolt file, one fsync'd commit per batch,
// and deletes them. So a request costs one small write, not an fsync of
// its own.
//
// Records go to numbered files, one per batch: a flush starts the next
// file, applies the previous one's records and deletes it, while new
// records keep arriving. After a crash, Open replays whatever files are
// left; applying a record twice is a no-op, because its id is recorded in
// the same commit as its spend.
type journal struct {
	base string // the ledger file's path; journal files are base.journal.<n>
	mu   sync.Mutex
	f    *os.File
	gen  uint64
	size int64 // of f
	// entries are what f holds, in order.
	entries []journalEntry
	buf     []byte
	// broken is set when a failed write could not be undone: appending
	// after a partial record would hide every later one on replay.
	broken error
}

// journalEntry is one Settle or Charge: the spend to commit and the id that
// makes it count once.
type journalEntry struct {
	Charge bool
	ID     string
	// At is when it happened, in Unix nanoseconds: it picks the window.
	At    int64
	Holds []holdRecord // accounts and the amounts to commit
	Usage Usage
	// Decision is a settled reservation's first answer, kept for retries.
	Decision *Decision
}

func (en journalEntry) at() time.Time { return time.Unix(0, en.At) }

// batch is a closed journal file and its entries, to apply.
type batch struct {
	gen     uint64
	path    string
	entries []journalEntry
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// openJournal reads what earlier processes left (in file order) and starts
// a new file after them.
func openJournal(base string) (*journal, []batch, error) {
	names, err := filepath.Glob(base + ".journal.*")
	if err != nil {
		return nil, nil, err
	}
	var left []batch
	var last uint64
	for _, name := range names {
		gen, err := strconv.ParseUint(strings.TrimPrefix(name, base+".journal."), 10, 64)
		if err != nil {
			continue // not ours
		}
		entries, err := readJournal(name)
		if err != nil {
			return nil, nil, err
		}
		left = append(left, batch{gen: gen, path: name, entries: entries})
		last = max(last, gen)
	}
	slices.SortFunc(left, func(a, b batch) int { return cmp.Compare(a.gen, b.gen) })
	j := &journal{base: base, gen: last}
	if err := j.next(); err != nil {
		return nil, nil, err
	}
	return j, left, nil
}

// readJournal decodes a journal file up to its end or to the first record
// that is torn or corrupt: the tail a crash of the machine can leave.
func readJournal(path string) ([]journalEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var out []journalEntry
	var head [8]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return out, nil
		}
		n, sum := binary.LittleEndian.Uint32(head[:4]), binary.LittleEndian.Uint32(head[4:])
		if n > 1<<20 {
			return out, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil || crc32.Checksum(payload, crcTable) != sum {
			return out, nil
		}
		en, err := decodeEntry(payload)
		if err != nil {
			return out, nil
		}
		out = append(out, en)
	}
}

// next starts the next journal file. Callers hold mu, or own j.
func (j *journal) next() error {
	j.gen++
	f, err := os.OpenFile(fmt.Sprintf("%s.journal.%d", j.base, j.gen), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: starting a journal file: %w", err)
	}
	j.f, j.broken = f, nil
	return nil
}

// append writes en in one write(2) and, only once it is written, runs
// then with the generation it belongs to, while no flush can take it.
func (j *journal) append(en journalEntry, then func(gen uint64)) (pending int, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return 0, errors.New("ledger: closed")
	}
	if j.broken != nil {
		return 0, j.broken
	}
	// A record is its length, its CRC-32C and the entry.
	j.buf = encodeEntry(append(j.buf[:0], make([]byte, 8)...), en)
	payload := j.buf[8:]
	binary.LittleEndian.PutUint32(j.buf, uint32(len(payload)))
	binary.LittleEndian.PutUint32(j.buf[4:], crc32.Checksum(payload, crcTable))
	if _, err := j.f.Write(j.buf); err != nil {
		err = fmt.Errorf("ledger: writing the journal: %w", err)
		if terr := j.f.Truncate(j.size); terr != nil {
			j.broken = errors.Join(err, terr)
			return 0, j.broken
		}
		return 0, err
	}
	j.size += int64(len(j.buf))
	j.entries = append(j.entries, en)
	then(j.gen)
	return len(j.entries), nil
}

// rotate closes the current file and starts the next; it returns the
// closed file's batch, with nil entries when it held none (and is gone).
func (j *journal) rotate() (batch, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.entries) == 0 {
		return batch{}, nil
	}
	old, b := j.f, batch{gen: j.gen, path: j.f.Name(), entries: j.entries}
	if err := j.next(); err != nil {
		j.gen-- // keep appending to the old file
		return batch{}, err
	}
	j.entries, j.size = nil, 0
	return b, old.Close()
}

// close closes the current file, and deletes it when it holds nothing.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	if len(j.entries) == 0 {
		err = errors.Join(err, os.Remove(j.f.Name()))
	}
	j.f = nil
	return err
}
