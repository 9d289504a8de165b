package ledger

import (
	"errors"
	"os"
	"syscall"
)

// allocate gives a new journal file its size with disk blocks reserved,
// so that a full disk fails here and not in a copy into the mapping, and
// without writing the zeros (the disk would then write them too).
func allocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return writeZeros(f, size)
	}
	return err
}
