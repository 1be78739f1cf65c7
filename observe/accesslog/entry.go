package accesslog

import (
	"strconv"
	"time"

	"github.com/tollgate/tollgate/internal/jsonx"
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
	b = jsonx.AppendString(b, e.RequestID)
	b = append(b, `,"route":`...)
	b = jsonx.AppendString(b, e.Route)
	b = append(b, `,"service":`...)
	b = jsonx.AppendString(b, e.Service)
	b = append(b, `,"consumer":`...)
	b = jsonx.AppendString(b, e.Consumer)
	b = append(b, `,"method":`...)
	b = jsonx.AppendString(b, e.Method)
	b = append(b, `,"path":`...)
	b = jsonx.AppendString(b, e.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"upstream_ms":`...)
	b = appendMillis(b, e.UpstreamDuration)
	b = append(b, `,"total_ms":`...)
	b = appendMillis(b, e.TotalDuration)
	b = append(b, `,"client_ip":`...)
	b = jsonx.AppendString(b, e.ClientIP)
	if e.UpstreamTarget != "" {
		b = append(b, `,"upstream":`...)
		b = jsonx.AppendString(b, e.UpstreamTarget)
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
