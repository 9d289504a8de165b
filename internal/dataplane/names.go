package dataplane

import (
	"crypto/sha256"
	"encoding/hex"
)

// What the manager and the proxy both name: the objects the manager
// renders for a Gateway and the keys and marks the proxy reads and writes.
const (
	// ConfigKey is the ConfigMap key of the proxy config.
	ConfigKey = "config.json"
	// UsageKey is the usage ConfigMap key of the proxies' usage report.
	UsageKey = "usage.json"
	// LabelHeartbeat marks a proxy's heartbeat Lease with its Gateway's name.
	LabelHeartbeat = "tollgate.dev/gateway"
	// AnnotationConfigHash is on the ConfigMap and on proxy heartbeat Leases.
	AnnotationConfigHash = "tollgate.dev/config-hash"
)

// Name is the name of a Gateway's rendered objects, kept a valid DNS label:
// long Gateway names are cut and suffixed with a hash so that they stay unique.
func Name(gateway, suffix string) string {
	n := "tollgate-" + gateway + suffix
	if len(n) <= 63 {
		return n
	}
	sum := sha256.Sum256([]byte(gateway + suffix))
	return n[:63-9] + "-" + hex.EncodeToString(sum[:])[:8]
}
