package listener

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 guard sits between a client connection and the HTTP/2 server.
// It reads the client's frames before the server does, on the raw byte
// stream (9-byte frame headers; only header blocks and SETTINGS are looked
// into), and
//
//   - cuts off floods: a connection that sends PING, SETTINGS, RST_STREAM
//     (rapid reset), empty or unknown frames faster than its budget allows,
//     or a header block in endless CONTINUATION frames, gets
//     GOAWAY(ENHANCE_YOUR_CALM) and is closed;
//   - makes the server answer as the protocol says where net/http does not:
//     a request with a connection-specific header field (Connection,
//     Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, or TE other
//     than "trailers") is reset with PROTOCOL_ERROR rather than answered
//     400, and a SETTINGS frame that repeats a parameter is taken (its last
//     value wins) rather than refused.
//
// To see header field names the guard decodes every header block with its
// own HPACK decoder, which stays in step with the server's because both
// decode the same blocks in the same order. A bad request is not dropped:
// the guard appends to its header block a CONTINUATION frame holding an
// invalid field, so the server itself resets the stream, and no stream,
// flow-control or HPACK state of the server is bypassed.
//
// Budgets are token buckets: burst frames at once, refilled at rate per
// second. A PING is free when the server has sent DATA or HEADERS since the
// previous one (flow-control pings of a client receiving a download), and
// every stream the server completes earns back one reset.
type h2Limits struct {
	Pings, Settings, Resets, Glitches budget
	// MaxBlockFrames bounds the frames of one header block (HEADERS and
	// its CONTINUATIONs).
	MaxBlockFrames int
}

type budget struct {
	Burst float64
	Rate  float64 // per second
}

var defaultH2Limits = h2Limits{
	Pings:          budget{Burst: 100, Rate: 10},
	Settings:       budget{Burst: 50, Rate: 5},
	Resets:         budget{Burst: 200, Rate: 20},
	Glitches:       budget{Burst: 1000, Rate: 100},
	MaxBlockFrames: 32,
}

const (
	frameHeaderLen = 9
	// goAwayWait bounds how long the guard waits to write its GOAWAY to a
	// client that does not read.
	goAwayWait = 500 * time.Millisecond
	// guardBufSize is the read-ahead per connection; a frame that must be
	// seen whole (header block, SETTINGS) grows it up to the frame size.
	guardBufSize = 4 << 10
	// lingerMax bounds what is read and dropped while closing.
	lingerMax = 1 << 20
)

// errFlood ends the server's reading of a connection the guard cut off.
var errFlood = errors.New("http2: connection closed for flooding")

// malformedField is a CONTINUATION frame payload: one header field, literal
// without indexing, named "Connection" (upper case is invalid in HTTP/2),
// with an empty value. The server refuses the block that ends with it as a
// stream error of type PROTOCOL_ERROR.
var malformedField = []byte{0x00, 10, 'C', 'o', 'n', 'n', 'e', 'c', 't', 'i', 'o', 'n', 0x00}

type h2Guard struct {
	net.Conn
	lim      *h2Limits
	maxFrame int // the server's SETTINGS_MAX_FRAME_SIZE

	// Read side: only the server's frame reader calls Read.
	buf   []byte // buf[r:w]: read from the connection, not yet handed on
	r, w  int
	ready int   // buf[r:r+ready] is checked and may be handed to the server
	pass  int   // bytes after those that are handed on unchecked (payloads)
	need  int   // bytes of the frame at buf[r:] that must be read first
	rerr  error // the connection's read error, after the buffered bytes
	dead  bool  // the server will end the connection itself: stop checking

	hdec  *hpack.Decoder
	block headerBlock
	// maxStream is the highest stream the client opened (GOAWAY's last
	// stream).
	maxStream                         uint32
	pings, settings, resets, glitches bucket
	seenOut, seenEnds                 uint64 // the writer's counters when last looked at

	// Write side: the server's frame writer (one write at a time) and the
	// guard's GOAWAY. The frame boundaries of the output are tracked so a
	// GOAWAY never lands inside another frame.
	wmu     sync.Mutex
	wleft   int // bytes of the frame being written still to come
	whdr    [frameHeaderLen]byte
	whn     int
	wclosed bool
	// goAwayFrame waits for the end of the frame being written;
	// goAwaySent is closed once it is written.
	goAwayFrame []byte
	goAwaySent  chan struct{}
	// dataOut counts the DATA and HEADERS frames written, endsOut the
	// streams the server ended.
	dataOut, endsOut atomic.Uint64

	// cutOff: the guard closes the connection itself, after its GOAWAY.
	cutOff atomic.Bool
	// onCutoff, if set, is told why.
	onCutoff func(reason string)
}

// headerBlock is the state of the header block being read.
type headerBlock struct {
	stream uint32 // 0: none open
	frames int
	decode bool // the server decodes this block (it refuses some unread)
	bad    bool // a connection-specific field was seen
	te     int  // TE fields seen
}

// newH2Guard guards conn, whose client preface has been read; buffered
// holds the bytes read after it.
// onCutoff, if not nil, is called when the guard cuts the connection off.
func newH2Guard(conn net.Conn, buffered []byte, maxFrame int, lim *h2Limits, onCutoff func(reason string)) net.Conn {
	g := &h2Guard{Conn: conn, lim: lim, maxFrame: maxFrame, onCutoff: onCutoff}
	g.buf = make([]byte, max(guardBufSize, len(buffered)))
	g.w = copy(g.buf, buffered)
	// The server's decoder has the protocol's default table size; so has
	// this one.
	g.hdec = hpack.NewDecoder(4096, g.onField)
	if tc, ok := conn.(*tls.Conn); ok {
		return &tlsH2Guard{h2Guard: g, tc: tc}
	}
	return g
}

// tlsH2Guard gives the server the TLS state of the connection.
type tlsH2Guard struct {
	*h2Guard
	tc *tls.Conn
}

func (g *tlsH2Guard) ConnectionState() tls.ConnectionState { return g.tc.ConnectionState() }

func (g *h2Guard) Read(p []byte) (int, error) {
	for g.ready == 0 {
		switch {
		case g.pass > 0 && g.r < g.w:
			k := min(g.pass, g.w-g.r)
			g.ready, g.pass = k, g.pass-k
		case g.pass > 0:
			// A payload not looked into goes straight to the server.
			n, err := g.Conn.Read(p[:min(len(p), g.pass)])
			g.pass -= n
			return n, err
		case g.rerr != nil && g.r == g.w:
			return 0, g.rerr
		case !g.check():
			if g.rerr != nil {
				// The connection ended inside a frame: hand on what came.
				g.dead = true
				continue
			}
			g.fill()
		}
	}
	n := copy(p, g.buf[g.r:g.r+g.ready])
	g.r += n
	g.ready -= n
	if g.r == g.w {
		g.r, g.w = 0, 0
	}
	return n, nil
}

// fill reads more of the connection, making room for a whole frame.
func (g *h2Guard) fill() {
	if g.r > 0 {
		g.w = copy(g.buf, g.buf[g.r:g.w])
		g.r = 0
	}
	if g.need > len(g.buf) {
		g.buf = append(g.buf, make([]byte, g.need-len(g.buf))...)
	}
	n, err := g.Conn.Read(g.buf[g.w:])
	g.w += n
	if err != nil {
		g.rerr = err
	}
}

// check looks at the frame at buf[r:] and sets how much of it may go on.
// It reports false when more bytes are needed first.
func (g *h2Guard) check() bool {
	avail := g.buf[g.r:g.w]
	if g.dead {
		g.ready = len(avail)
		return len(avail) > 0
	}
	if len(avail) < frameHeaderLen {
		return false
	}
	length := int(avail[0])<<16 | int(avail[1])<<8 | int(avail[2])
	typ, flags := http2.FrameType(avail[3]), http2.Flags(avail[4])
	stream := binary.BigEndian.Uint32(avail[5:9]) & (1<<31 - 1)
	if length > g.maxFrame ||
		g.block.stream != 0 && (typ != http2.FrameContinuation || stream != g.block.stream) ||
		g.block.stream == 0 && typ == http2.FrameContinuation {
		// The server ends the connection on this frame (FRAME_SIZE_ERROR,
		// or PROTOCOL_ERROR for a broken header block).
		g.dead = true
		return g.check()
	}
	whole := typ == http2.FrameHeaders || typ == http2.FrameContinuation ||
		typ == http2.FrameSettings && flags&http2.FlagSettingsAck == 0
	if !whole {
		if abuse := g.account(typ, flags, length); abuse != "" {
			return g.flood(abuse)
		}
		g.ready, g.pass = min(len(avail), frameHeaderLen), length
		return true
	}
	if len(avail) < frameHeaderLen+length {
		g.need = frameHeaderLen + length
		return false
	}
	frame := avail[:frameHeaderLen+length]
	switch typ {
	case http2.FrameSettings:
		if !g.settings.take(g.lim.Settings) {
			return g.flood("SETTINGS flood")
		}
		g.ready = g.dedupSettings(frame, stream)
	default: // HEADERS, CONTINUATION
		if abuse := g.headerFrame(frame, typ, flags, stream); abuse != "" {
			return g.flood(abuse)
		}
	}
	return true
}

// account charges the frames that are cheap to send and dear to serve. It
// returns what is abused, if anything.
func (g *h2Guard) account(typ http2.FrameType, flags http2.Flags, length int) string {
	switch typ {
	case http2.FramePing:
		if flags&http2.FlagPingAck != 0 {
			return ""
		}
		if out := g.dataOut.Load(); out != g.seenOut {
			g.seenOut = out
			return ""
		}
		if !g.pings.take(g.lim.Pings) {
			return "PING flood"
		}
	case http2.FrameRSTStream:
		ends := g.endsOut.Load()
		g.resets.earn(float64(ends-g.seenEnds), g.lim.Resets)
		g.seenEnds = ends
		if !g.resets.take(g.lim.Resets) {
			return "rapid reset"
		}
	case http2.FrameData:
		if length == 0 && flags&http2.FlagDataEndStream == 0 && !g.glitches.take(g.lim.Glitches) {
			return "empty frames flood"
		}
	case http2.FrameSettings, http2.FramePriority, http2.FrameGoAway, http2.FrameWindowUpdate,
		http2.FramePushPromise, http2.FramePriorityUpdate:
	default: // unknown types are ignored by the server, after reading them
		if !g.glitches.take(g.lim.Glitches) {
			return "unknown frames flood"
		}
	}
	return ""
}

// headerFrame decodes a HEADERS or CONTINUATION frame (whole in frame) and
// makes the server refuse a block with a connection-specific field. It
// returns what is abused, if anything.
func (g *h2Guard) headerFrame(frame []byte, typ http2.FrameType, flags http2.Flags, stream uint32) string {
	frag := frame[frameHeaderLen:]
	g.ready = len(frame)
	if typ == http2.FrameHeaders {
		if stream == 0 {
			g.dead = true // a connection error for the server
			return ""
		}
		if stream > g.maxStream && stream%2 == 1 {
			g.maxStream = stream
		}
		g.block = headerBlock{stream: stream, decode: true}
		// Padding and priority are parsed as the server does: a frame it
		// cannot parse ends the connection, and one whose padding is too
		// long is refused (a stream error) without its block being decoded.
		pad := 0
		if flags&http2.FlagHeadersPadded != 0 {
			if len(frag) < 1 {
				g.dead = true
				return ""
			}
			pad, frag = int(frag[0]), frag[1:]
		}
		if flags&http2.FlagHeadersPriority != 0 {
			if len(frag) < 5 {
				g.dead = true
				return ""
			}
			frag = frag[5:]
		}
		if pad > len(frag) {
			g.block.decode = false
		} else {
			frag = frag[:len(frag)-pad]
		}
	} else if len(frag) == 0 && flags&http2.FlagContinuationEndHeaders == 0 && !g.glitches.take(g.lim.Glitches) {
		return "empty frames flood"
	}
	g.block.frames++
	if g.block.frames > g.lim.MaxBlockFrames {
		return "CONTINUATION flood"
	}
	if g.block.decode {
		if _, err := g.hdec.Write(frag); err != nil {
			g.dead = true // the server's decoder fails alike: COMPRESSION_ERROR
			return ""
		}
	}
	if flags&http2.FlagHeadersEndHeaders == 0 {
		return ""
	}
	block := g.block
	g.block = headerBlock{}
	if !block.decode {
		return ""
	}
	if err := g.hdec.Close(); err != nil {
		g.dead = true
		return ""
	}
	if block.bad {
		g.appendMalformed(stream)
	}
	return ""
}

// onField is the decoder's callback, for each field of a block.
func (g *h2Guard) onField(f hpack.HeaderField) {
	// The fields net/http refuses in an HTTP/2 request (answering 400).
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		g.block.bad = true
	case "te":
		g.block.te++
		if g.block.te > 1 || f.Value != "trailers" && f.Value != "" {
			g.block.bad = true
		}
	}
}

// appendMalformed ends the header block of the frame at buf[r:r+ready]
// with a CONTINUATION frame holding an invalid field instead.
func (g *h2Guard) appendMalformed(stream uint32) {
	end := g.r + g.ready
	size := frameHeaderLen + len(malformedField)
	if g.w+size > len(g.buf) {
		g.buf = append(g.buf, make([]byte, g.w+size-len(g.buf))...)
	}
	copy(g.buf[end+size:], g.buf[end:g.w])
	g.w += size
	g.buf[g.r+4] &^= byte(http2.FlagHeadersEndHeaders)
	h := g.buf[end : end+frameHeaderLen]
	h[0], h[1], h[2] = 0, 0, byte(len(malformedField))
	h[3], h[4] = byte(http2.FrameContinuation), byte(http2.FlagContinuationEndHeaders)
	binary.BigEndian.PutUint32(h[5:], stream)
	copy(g.buf[end+frameHeaderLen:], malformedField)
	g.ready += size
}

// dedupSettings rewrites a SETTINGS frame that repeats a parameter so that
// each appears once, with its last value (RFC 9113 section 6.5.3: values
// are processed in order), or with an invalid value if one was given, so
// the server still reports it. It returns the frame's new length.
func (g *h2Guard) dedupSettings(frame []byte, stream uint32) int {
	payload := frame[frameHeaderLen:]
	// The server refuses odd sizes and more than 100 parameters: leave
	// those to it.
	if stream != 0 || len(payload)%6 != 0 || len(payload) > 600 || !hasDupSettings(payload) {
		return len(frame)
	}
	n := 0
	for i := 0; i < len(payload); i += 6 {
		id := binary.BigEndian.Uint16(payload[i:])
		val := binary.BigEndian.Uint32(payload[i+2:])
		j := 0
		for j < n && binary.BigEndian.Uint16(payload[j*6:]) != id {
			j++
		}
		if j == n {
			copy(payload[n*6:], payload[i:i+6])
			n++
			continue
		}
		prev := http2.Setting{ID: http2.SettingID(id), Val: binary.BigEndian.Uint32(payload[j*6+2:])}
		if prev.Valid() == nil {
			binary.BigEndian.PutUint32(payload[j*6+2:], val)
		}
	}
	removed := len(payload) - n*6
	frame[0], frame[1], frame[2] = byte(n*6>>16), byte(n*6>>8), byte(n*6)
	end := g.r + len(frame)
	copy(g.buf[end-removed:], g.buf[end:g.w])
	g.w -= removed
	return len(frame) - removed
}

func hasDupSettings(payload []byte) bool {
	for i := 6; i < len(payload); i += 6 {
		for j := 0; j < i; j += 6 {
			if payload[i] == payload[j] && payload[i+1] == payload[j+1] {
				return true
			}
		}
	}
	return false
}

// flood cuts the connection off: GOAWAY(ENHANCE_YOUR_CALM) saying why, then
// close. The server's next read fails.
func (g *h2Guard) flood(abuse string) bool {
	g.cutOff.Store(true)
	g.rerr = errFlood
	g.dead = true
	g.ready, g.pass = 0, 0
	g.r, g.w = 0, 0
	if g.onCutoff != nil {
		g.onCutoff(abuse)
	}
	g.goAway(http2.ErrCodeEnhanceYourCalm, abuse)
	// Gently: the client gets the GOAWAY with the rest of what it had not
	// read yet.
	lingeringClose(g.Conn, goAwayWait, lingerMax)
	return true
}

// Close closes the connection, unless the guard is closing it itself.
func (g *h2Guard) Close() error {
	if g.cutOff.Load() {
		return nil
	}
	return g.Conn.Close()
}

// goAway writes a GOAWAY between two of the server's frames: at once, or
// after the server's next write has finished the frame it was writing.
func (g *h2Guard) goAway(code http2.ErrCode, debug string) {
	// A server write stuck on a client that does not read gives up soon.
	g.Conn.SetWriteDeadline(time.Now().Add(goAwayWait))
	f := make([]byte, frameHeaderLen+8, frameHeaderLen+8+len(debug))
	f[2] = byte(8 + len(debug))
	f[3] = byte(http2.FrameGoAway)
	binary.BigEndian.PutUint32(f[9:], g.maxStream)
	binary.BigEndian.PutUint32(f[13:], uint32(code))
	f = append(f, debug...)
	g.wmu.Lock()
	if g.wclosed {
		g.wmu.Unlock()
		return
	}
	if g.wleft == 0 && g.whn == 0 {
		g.wclosed = true
		g.Conn.Write(f)
		g.wmu.Unlock()
		return
	}
	sent := make(chan struct{})
	g.goAwayFrame, g.goAwaySent = f, sent
	g.wmu.Unlock()
	select {
	case <-sent:
	case <-time.After(goAwayWait):
	}
}

func (g *h2Guard) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.wclosed {
		return 0, net.ErrClosed
	}
	if g.goAwayFrame == nil {
		n, err := g.Conn.Write(p)
		g.trackOutput(p[:n])
		return n, err
	}
	// A GOAWAY waits for the end of the frame being written.
	k := g.frameRest(p)
	n, err := g.Conn.Write(p[:k])
	g.trackOutput(p[:n])
	if err != nil || g.wleft > 0 || g.whn > 0 {
		return n, err
	}
	g.wclosed = true
	g.Conn.Write(g.goAwayFrame)
	close(g.goAwaySent)
	return n, net.ErrClosed
}

// frameRest is how much of p completes the frame being written (all of p
// when p does not).
func (g *h2Guard) frameRest(p []byte) int {
	if g.whn == 0 {
		return min(g.wleft, len(p))
	}
	h := g.whdr
	k := copy(h[g.whn:], p)
	if g.whn+k < frameHeaderLen {
		return len(p)
	}
	return min(k+(int(h[0])<<16|int(h[1])<<8|int(h[2])), len(p))
}

// trackOutput follows the frames the server writes: where each ends, and
// which carry data or end a stream.
func (g *h2Guard) trackOutput(p []byte) {
	for len(p) > 0 {
		if g.wleft > 0 {
			k := min(g.wleft, len(p))
			g.wleft -= k
			p = p[k:]
			continue
		}
		k := copy(g.whdr[g.whn:], p)
		g.whn += k
		p = p[k:]
		if g.whn < frameHeaderLen {
			return
		}
		g.whn = 0
		h := &g.whdr
		g.wleft = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		if typ := http2.FrameType(h[3]); typ == http2.FrameData || typ == http2.FrameHeaders {
			g.dataOut.Add(1)
			if http2.Flags(h[4])&http2.FlagDataEndStream != 0 {
				g.endsOut.Add(1)
			}
		}
	}
}

// bucket is a token bucket for one kind of frame.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) refill(lim budget) {
	now := time.Now()
	if b.last.IsZero() {
		b.tokens = lim.Burst
	} else {
		b.tokens = min(lim.Burst, b.tokens+now.Sub(b.last).Seconds()*lim.Rate)
	}
	b.last = now
}

func (b *bucket) take(lim budget) bool {
	b.refill(lim)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) earn(n float64, lim budget) {
	if n > 0 {
		b.refill(lim)
		b.tokens = min(lim.Burst, b.tokens+n)
	}
}
