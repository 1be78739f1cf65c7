// Package testutil holds helpers shared by tests: waiting for a condition
// without sleeping blindly, and finding a closed loopback port.
package testutil

import (
	"net"
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it holds or the
// deadline passes, then fails the test with msg.
func Eventually(t testing.TB, within time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", within, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ClosedPort returns a loopback address on which nothing listens: connecting
// to it is refused.
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
