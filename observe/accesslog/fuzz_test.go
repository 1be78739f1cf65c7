package accesslog

import (
	"testing"
	"time"
)

// FuzzEntryJSON checks that any strings give one valid JSON line that
// decodes back to the same strings (with invalid UTF-8 bytes as U+FFFD).
func FuzzEntryJSON(f *testing.F) {
	f.Add("id", "route", "svc", "alice", "GET", "/users/1", "127.0.0.1", "127.0.0.1:9001", 200, int64(10), int64(1500000))
	f.Add("", "", "", "", "", "", "", "", 0, int64(0), int64(0))
	f.Add("\x00\"\\", "\u2028", "\xff", "\xed\xa0\x80", "\t\n\r", "/caf\xc3", "\x7f", "\U0001F600", 599, int64(-1), int64(-5))
	f.Fuzz(func(t *testing.T, requestID, route, service, consumer, method, path, clientIP, upstream string, status int, bytes, nanos int64) {
		e := Entry{
			Time:             time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			RequestID:        requestID,
			Route:            route,
			Service:          service,
			Consumer:         consumer,
			Method:           method,
			Path:             path,
			Status:           status,
			Bytes:            bytes,
			UpstreamDuration: time.Duration(nanos),
			TotalDuration:    time.Duration(nanos / 3),
			ClientIP:         clientIP,
			UpstreamTarget:   upstream,
		}
		lines := decodeLines(t, appendEntry(nil, &e))
		if len(lines) != 1 {
			t.Fatalf("got %d lines, want 1", len(lines))
		}
		checkLine(t, lines[0], &e)
	})
}
