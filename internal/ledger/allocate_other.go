//go:build !linux

package ledger

import "os"

// allocate gives a new journal file its size by writing zeros, so that its
// disk blocks exist before the file is mapped.
func allocate(f *os.File, size int64) error { return writeZeros(f, size) }
