package testredis

import (
	"net"
	"testing"
)

func TestStartAnswersPingOnLoopback(t *testing.T) {
	addr := Start(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("address %q is not on 127.0.0.1 (%v)", addr, err)
	}
	if err := ping(addr); err != nil {
		t.Fatalf("PING %s: %v", addr, err)
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("both servers on %s", a)
	}
}
