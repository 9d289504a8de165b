// Package timezone loads IANA time zones once per process: time.LoadLocation
// reads the zone database on every call, and budget windows ask for them on
// every request.
package timezone

import (
	"sync"
	"time"
)

var cache sync.Map // name -> *time.Location

// Load returns the named location, reading it only the first time.
func Load(name string) (*time.Location, error) {
	if l, ok := cache.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	cache.Store(name, l)
	return l, nil
}
