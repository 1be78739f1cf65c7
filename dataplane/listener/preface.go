package listener

import (
	"bytes"
	"io"
	"net"
	"sync"
)

// clientPreface opens every HTTP/2 connection (RFC 9113 section 3.4).
var clientPreface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

type protocol int

const (
	neither protocol = iota // close the connection without a word
	http1
	http2Preface
)

// sniffLimit bounds what is read to tell the protocol of a clear connection;
// a longer first line is left to the HTTP/1 server to judge.
const sniffLimit = 4 << 10

var sniffBufs = sync.Pool{New: func() any { return new([sniffLimit]byte) }}

// sniffClear reads the first bytes of a clear connection until they tell
// its protocol: the HTTP/2 connection preface, or an HTTP/1 request line.
// Bytes that are neither, such as a broken preface, end the connection
// unanswered, as an HTTP/2 server must end it (RFC 9113 section 3.4); an
// HTTP/1.1 400 would be an answer in a protocol the client may not speak.
// It returns the bytes read, less the preface.
func sniffClear(conn net.Conn) (protocol, []byte) {
	buf := sniffBufs.Get().(*[sniffLimit]byte)
	defer sniffBufs.Put(buf)
	n := 0
	for {
		k, err := conn.Read(buf[n:])
		n += k
		p, done := judge(buf[:n], n == len(buf))
		if done {
			if p == http2Preface {
				return p, bytes.Clone(buf[len(clientPreface):n])
			}
			return p, bytes.Clone(buf[:n])
		}
		if err != nil {
			if n > 0 && !bytes.HasPrefix(clientPreface, buf[:min(n, len(clientPreface))]) {
				// Part of a request, then a stall: the HTTP/1 server
				// answers that (408).
				return http1, bytes.Clone(buf[:n])
			}
			return neither, nil
		}
	}
}

// judge tells the protocol from the first bytes b of a connection, or
// reports that more are needed (full: no more can be read).
func judge(b []byte, full bool) (protocol, bool) {
	if len(b) < len(clientPreface) && bytes.HasPrefix(clientPreface, b) {
		return neither, false
	}
	if bytes.HasPrefix(b, clientPreface) {
		return http2Preface, true
	}
	if bytes.HasPrefix(b, []byte("PRI ")) {
		return neither, true // a broken preface; PRI is no HTTP/1 method
	}
	// Empty lines before a request are allowed (RFC 9112 section 2.2).
	line := bytes.TrimLeft(b, "\r\n")
	end := bytes.IndexByte(line, '\n')
	if end < 0 {
		return http1, full
	}
	line = bytes.TrimSuffix(line[:end], []byte("\r"))
	// method SP request-target SP HTTP-version
	sp := bytes.LastIndexByte(line, ' ')
	if sp > 0 && bytes.IndexByte(line[:sp], ' ') > 0 && bytes.HasPrefix(line[sp+1:], []byte("HTTP/")) {
		return http1, true
	}
	return neither, true
}

// readPreface reads the client preface of a TLS connection that agreed on
// h2.
func readPreface(conn net.Conn) bool {
	var buf [24]byte
	_, err := io.ReadFull(conn, buf[:])
	return err == nil && bytes.Equal(buf[:], clientPreface)
}
