package accesslog

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Entry is one finished request. The gateway fills it on the stack; Log
// copies what it needs before returning, so the Entry may be reused.
type Entry struct {
	Time      time.Time // when the request arrived; zero means now
	RequestID string
	Route     string
	Service   string
	Consumer  string
	Method    string
	Path      string
	Status    int
	Bytes     int64 // response body bytes sent to the client
	// UpstreamDuration is the time spent on upstream calls; 0 when none was made.
	UpstreamDuration time.Duration
	TotalDuration    time.Duration
	ClientIP         string
	// UpstreamTarget is the address of the target that answered; the field is
	// left out of the line when empty.
	UpstreamTarget string
}

// appendEntry appends e as one JSON object and a newline. It is written by
// hand rather than with encoding/json so that logging a request allocates
// nothing.
func appendEntry(b []byte, e *Entry) []byte {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	b = append(b, `{"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendString(b, e.RequestID)
	b = append(b, `,"route":`...)
	b = appendString(b, e.Route)
	b = append(b, `,"service":`...)
	b = appendString(b, e.Service)
	b = append(b, `,"consumer":`...)
	b = appendString(b, e.Consumer)
	b = append(b, `,"method":`...)
	b = appendString(b, e.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, e.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"upstream_ms":`...)
	b = appendMillis(b, e.UpstreamDuration)
	b = append(b, `,"total_ms":`...)
	b = appendMillis(b, e.TotalDuration)
	b = append(b, `,"client_ip":`...)
	b = appendString(b, e.ClientIP)
	if e.UpstreamTarget != "" {
		b = append(b, `,"upstream":`...)
		b = appendString(b, e.UpstreamTarget)
	}
	return append(b, "}\n"...)
}

// appendMillis writes a duration as milliseconds with three decimals
// (microsecond precision, truncated). Integer formatting is exact and about
// twice as fast as strconv.AppendFloat.
func appendMillis(b []byte, d time.Duration) []byte {
	us := int64(d / time.Microsecond)
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Control characters are escaped,
// each byte of invalid UTF-8 becomes U+FFFD (as encoding/json does), and
// U+2028/U+2029 are escaped so a line is safe to embed in JavaScript too.
// Paths and headers come from clients, so nothing is assumed about s.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is pending, needing no escape
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
