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
	"syscall"
	"time"
)

// journal is the Embedded ledger's write-ahead log of spend. Settle and
// Charge copy one record into it before they return; a flusher then applies
// the records in batches to the bbolt file, one fsync'd commit per batch,
// and deletes them. So a request costs a copy to memory, not an fsync (nor
// a system call) of its own.
//
// The journal files are mapped into memory (MAP_SHARED): what is copied
// there is in the kernel's page cache at once, so it survives the process
// being killed at any point, as a write(2) would. Each file gets its disk
// blocks before it is mapped (see allocate), so that a full disk fails the
// creation of a file, not a copy into it; it reads as zeros, and a zero
// length ends the records.
//
// Records go to numbered files: a flush seals the current file, applies
// the sealed ones' records, while new records go to the next file; a file
// that fills up is sealed early. After a crash, Open replays whatever files
// are left; applying a record twice is a no-op, because its id is recorded
// in the same commit as its spend.
//
// A committed file is kept, mapped, as a spare for a later generation
// rather than deleted: starting a file is then a rename, not a creation,
// an allocation and a mapping with a page fault for each page written.
// Each record's checksum is seeded with its file's generation, so the
// records a spare held before stop a replay like a torn tail does.
type journal struct {
	base string // the ledger file's path; journal files are base.journal.<n>
	mu   sync.Mutex
	f    *os.File
	path string // f's name now: a spare was renamed
	mem  []byte // f, mapped
	off  int    // where the next record goes
	gen  uint64
	seed uint32 // the checksum seed of gen
	// spare are committed files, mapped, to start the next ones with.
	spare []journalFile
	// entries are what f holds, in order; sealed are full files not yet
	// taken by a flush.
	entries []journalEntry
	sealed  []batch
	buf     []byte
}

// journalFileSize is the size of each journal file: at 25ms between
// flushes, room for tens of thousands of requests a second before one fills.
const journalFileSize = 256 << 10

// maxSpares is how many committed journal files are kept for reuse: a
// flush seals one file while the one before is committed.
const maxSpares = 2

// journalFile is a journal file and its mapping.
type journalFile struct {
	f    *os.File
	path string
	mem  []byte
}

func (jf journalFile) close() error {
	return errors.Join(syscall.Munmap(jf.mem), jf.f.Close())
}

// genSeed is the checksum seed of a generation's records.
func genSeed(gen uint64) uint32 {
	return crc32.Checksum(binary.LittleEndian.AppendUint64(nil, gen), crcTable)
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
	// file is the sealed file, still mapped, to reuse once committed;
	// zero for a file an earlier process left.
	file journalFile
	// replayed batches were left by an earlier process, which may have
	// committed them already: their ids are checked before they count.
	// This process journals an id only once.
	replayed bool
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// openJournal reads what earlier processes left (in file order) and starts
// a new file after them.
func openJournal(base string) (*journal, []batch, error) {
	// Spares hold only committed records.
	spares, _ := filepath.Glob(base + ".spare-journal.*")
	for _, name := range spares {
		if err := os.Remove(name); err != nil {
			return nil, nil, err
		}
	}
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
		entries, err := readJournal(name, gen)
		if err != nil {
			return nil, nil, err
		}
		left = append(left, batch{gen: gen, path: name, entries: entries, replayed: true})
		last = max(last, gen)
	}
	slices.SortFunc(left, func(a, b batch) int { return cmp.Compare(a.gen, b.gen) })
	j := &journal{base: base, gen: last}
	if err := j.next(); err != nil {
		return nil, nil, err
	}
	return j, left, nil
}

// readJournal decodes a journal file of generation gen up to its end or to
// the first record that is torn or corrupt (the tail a crash of the
// machine can leave) or from an earlier generation (a reused file).
func readJournal(path string, gen uint64) ([]journalEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var out []journalEntry
	var head [8]byte
	seed := genSeed(gen)
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return out, nil
		}
		n, sum := binary.LittleEndian.Uint32(head[:4]), binary.LittleEndian.Uint32(head[4:])
		if n > 1<<20 {
			return out, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return out, nil
		}
		// Files written before checksums were seeded are read as well.
		if crc32.Update(seed, crcTable, payload) != sum && crc32.Checksum(payload, crcTable) != sum {
			return out, nil
		}
		en, err := decodeEntry(payload)
		if err != nil {
			return out, nil
		}
		out = append(out, en)
	}
}

func writeZeros(f *os.File, size int64) error {
	_, err := f.Write(make([]byte, size))
	return err
}

// next starts the next journal file, on a spare when there is one.
// Callers hold mu, or own j.
func (j *journal) next() error {
	name := fmt.Sprintf("%s.journal.%d", j.base, j.gen+1)
	var jf journalFile
	if n := len(j.spare); n > 0 && os.Rename(j.spare[n-1].path, name) == nil {
		jf, j.spare = j.spare[n-1], j.spare[:n-1]
	} else {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err == nil {
			err = allocate(f, journalFileSize)
			if err == nil {
				jf.mem, err = syscall.Mmap(int(f.Fd()), 0, journalFileSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
			}
			if err != nil {
				_ = f.Close()
				_ = os.Remove(name)
			}
		}
		if err != nil {
			return fmt.Errorf("ledger: starting a journal file: %w", err)
		}
		jf.f = f
	}
	j.gen++
	j.f, j.mem, j.path, j.off, j.seed = jf.f, jf.mem, name, 0, genSeed(j.gen)
	return nil
}

// append copies en into the journal and, once it is there, runs then with
// the generation it belongs to, while no flush can take it. It returns how
// many entries wait for a flush.
func (j *journal) append(en journalEntry, then func(gen uint64)) (pending int, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return 0, errors.New("ledger: closed")
	}
	// A record is its length, its CRC-32C and the entry.
	j.buf = encodeEntry(append(j.buf[:0], make([]byte, 8)...), en)
	payload := j.buf[8:]
	if len(j.buf) > journalFileSize-8 { // the zero length after it must fit too
		return 0, fmt.Errorf("ledger: a record of %d bytes does not fit a journal file", len(j.buf))
	}
	binary.LittleEndian.PutUint32(j.buf, uint32(len(payload)))
	if j.off+len(j.buf) > journalFileSize-8 {
		if err := j.seal(); err != nil {
			return 0, err
		}
	}
	binary.LittleEndian.PutUint32(j.buf[4:], crc32.Update(j.seed, crcTable, payload))
	j.off += copy(j.mem[j.off:], j.buf)
	j.entries = append(j.entries, en)
	then(j.gen)
	n := len(j.entries)
	for _, b := range j.sealed {
		n += len(b.entries)
	}
	return n, nil
}

// seal keeps the current file's batch for the next flush and starts the
// next file. Callers hold mu.
func (j *journal) seal() error {
	b := batch{gen: j.gen, path: j.path, entries: j.entries, file: journalFile{j.f, j.path, j.mem}}
	if err := j.next(); err != nil {
		return err // keep appending to the old file while it has room
	}
	// The next file likely takes as many entries: growing the slice entry
	// by entry was a quarter of what journaling a settle cost.
	j.sealed, j.entries = append(j.sealed, b), make([]journalEntry, 0, len(b.entries))
	return nil
}

// recycle disposes of a committed batch's file: kept as a spare while there
// is room, else deleted.
func (j *journal) recycle(b batch) error {
	jf := b.file
	if jf.f == nil { // left by an earlier process
		return os.Remove(b.path)
	}
	spare := fmt.Sprintf("%s.spare-journal.%d", j.base, b.gen)
	j.mu.Lock()
	keep := j.f != nil && len(j.spare) < maxSpares
	j.mu.Unlock()
	if keep && os.Rename(b.path, spare) == nil {
		jf.path = spare
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.f != nil { // not closed meanwhile
			j.spare = append(j.spare, jf)
			return nil
		}
	}
	return errors.Join(jf.close(), os.Remove(jf.path))
}

// take seals the current file, if it holds anything, and returns every
// sealed batch, oldest first.
func (j *journal) take() ([]batch, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var err error
	if len(j.entries) > 0 {
		err = j.seal()
	}
	out := j.sealed
	j.sealed = nil
	return out, err
}

// close closes the current file, and deletes it when it holds nothing, and
// deletes the spares.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := journalFile{j.f, j.path, j.mem}.close()
	if len(j.entries) == 0 {
		err = errors.Join(err, os.Remove(j.path))
	}
	for _, jf := range j.spare {
		err = errors.Join(err, jf.close(), os.Remove(jf.path))
	}
	j.f, j.mem, j.spare = nil, nil, nil
	return err
}
