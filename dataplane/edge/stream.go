package edge

import "bytes"

// Stream follows the bytes a client sends on an HTTP/1.1 connection, as they
// are read and before the HTTP engine parses them, and refuses a request head
// (or chunked trailer section) with a line that does not end in CRLF: a bare
// LF, or a CR not followed by LF, anywhere, including the empty line that ends
// the head and empty lines before a request line.
//
// The HTTP engine takes a bare LF for a line ending in some places (after the
// request line: the request is served) and, in others, waits for a CRLFCRLF
// that never comes until its read timeout. Checking the raw bytes first makes
// every such head fail at once: the engine never gets it whole.
//
// To tell heads from bodies, Stream follows each request's framing as the
// engine does: Content-Length bytes, or chunks up to the last one and its
// trailer section. When a head's framing is one CheckHeaders refuses
// (invalid or conflicting Content-Length, a Transfer-Encoding other than a
// single "chunked", both), or chunked framing breaks, Stream stops checking:
// the engine refuses that request and closes the connection, so nothing that
// follows is served. It holds a few dozen bytes of state and does not
// allocate.
type Stream struct {
	state streamState
	err   error
	left  uint64 // bytes of the body or chunk still to come; a chunk size being read
	hex   int    // digits of the chunk size read

	trailer   bool // the lines are a trailer section, not a head
	firstLine bool // the line is the request line
	field     fieldKind
	nameBuf   [len("transfer-encoding")]byte
	nameLen   int
	val       [18]byte // a Content-Length has at most 18 digits
	valLen    int
	valSpace  bool // OWS after the value's first bytes
	valBad    bool // more than val holds, or OWS inside

	sawCL, sawTE, badFraming bool
	length                   uint64
}

type streamState uint8

const (
	atRequest     streamState = iota // before a request line; empty lines (CRLF) may come first
	atRequestCR                      // a CR before a request line
	inLine                           // inside a line of a head or trailer section
	inLineCR                         // a CR in a line: LF must follow
	atLine                           // at the start of a field line; an empty line ends the section
	atLineCR                         // a CR at the start of a field line
	inBody                           // Content-Length bytes to skip
	inChunkSize                      // hex digits of a chunk size
	inChunkExt                       // after the size: extensions until CR
	inChunkSizeCR                    // LF after the size line's CR
	inChunkData                      // the chunk's bytes
	inChunkDataCR                    // CR after the chunk's bytes
	inChunkDataLF                    // LF after it
	unchecked                        // framing not followed (the request is refused)
	failed                           // a line did not end in CRLF
)

type fieldKind uint8

const (
	fieldSkip   fieldKind = iota // a line whose bytes only need their line ending checked
	fieldName                    // the name of a field line
	fieldLength                  // the value of Content-Length
	fieldCoding                  // the value of Transfer-Encoding
)

// maxChunkHex bounds the digits of a chunk size: 16 hex digits fill 64 bits.
// The HTTP engine takes at most 15.
const maxChunkHex = 16

// Scan takes the next bytes read from the connection. It returns how many of
// them may be handed to the HTTP engine: all of them, or, with
// ErrBareLineEnding, those before the byte that shows a bad line ending (a
// bare LF, or the byte after a lone CR). After an error every call returns
// 0 and the error.
func (s *Stream) Scan(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		switch s.state {
		case atRequest:
			switch p[i] {
			case '\r':
				s.state = atRequestCR
				i++
			case '\n':
				return s.fail(i)
			default:
				s.startSection(false)
			}
		case atRequestCR:
			if p[i] != '\n' {
				return s.fail(i)
			}
			s.state = atRequest
			i++
		case inLine:
			if s.field == fieldName {
				i = s.name(p, i)
				if i == len(p) {
					break
				}
			}
			if s.field == fieldSkip {
				j := indexCRLF(p[i:])
				if j < 0 {
					return len(p), nil
				}
				i += j
				if p[i] == '\r' && i+1 < len(p) && p[i+1] == '\n' {
					// The common case: the line ends here, whole.
					s.endLine()
					s.state = atLine
					i += 2
					break
				}
			}
			switch c := p[i]; c {
			case '\r':
				s.state = inLineCR
			case '\n':
				return s.fail(i)
			default:
				s.fieldByte(c)
			}
			i++
		case inLineCR:
			if p[i] != '\n' {
				return s.fail(i)
			}
			s.endLine()
			s.state = atLine
			i++
		case atLine:
			switch p[i] {
			case '\r':
				s.state = atLineCR
				i++
			case '\n':
				return s.fail(i)
			default:
				s.state, s.field, s.nameLen = inLine, fieldSkip, 0
				// Only the names looked for are read (most fields are
				// skipped to their line's end at once).
				if c := p[i] | 0x20; !s.trailer && (c == 'c' || c == 't') {
					s.field = fieldName
				}
			}
		case atLineCR:
			if p[i] != '\n' {
				return s.fail(i)
			}
			i++
			s.endSection()
		case inBody, inChunkData:
			k := min(uint64(len(p)-i), s.left)
			i += int(k)
			s.left -= k
			if s.left > 0 {
				break
			}
			if s.state == inBody {
				s.state = atRequest
			} else {
				s.state = inChunkDataCR
			}
		case inChunkSize:
			d := unhex(p[i])
			if d < 0 {
				if s.hex == 0 {
					s.state = unchecked
					break
				}
				s.state = inChunkExt
				break
			}
			if s.hex == maxChunkHex {
				s.state = unchecked
				break
			}
			s.left = s.left<<4 | uint64(d)
			s.hex++
			i++
		case inChunkExt:
			// Size, then optional whitespace and extensions, up to CRLF.
			j := indexCRLF(p[i:])
			if j < 0 {
				return len(p), nil
			}
			i += j
			if p[i] == '\n' {
				s.state = unchecked // the engine refuses it
				break
			}
			s.state = inChunkSizeCR
			i++
		case inChunkSizeCR:
			if p[i] != '\n' {
				s.state = unchecked
				break
			}
			i++
			if s.left == 0 {
				s.startSection(true) // the last chunk: trailer section
				s.state = atLine
			} else {
				s.state = inChunkData
			}
		case inChunkDataCR, inChunkDataLF:
			want := byte('\r')
			if s.state == inChunkDataLF {
				want = '\n'
			}
			if p[i] != want {
				s.state = unchecked
				break
			}
			i++
			if s.state == inChunkDataCR {
				s.state = inChunkDataLF
			} else {
				s.state, s.left, s.hex = inChunkSize, 0, 0
			}
		case unchecked:
			return len(p), nil
		case failed:
			return 0, s.err
		}
	}
	return len(p), nil
}

// Idle reports whether everything scanned so far makes whole requests: no
// head, body or line ending is partly received.
func (s *Stream) Idle() bool { return s.state == atRequest }

// Checking reports whether Stream still follows the requests (it stops on a
// framing the engine refuses).
func (s *Stream) Checking() bool { return s.state != unchecked }

func (s *Stream) fail(i int) (int, error) {
	s.state, s.err = failed, ErrBareLineEnding
	return i, s.err
}

// startSection starts a head at its request line, or a trailer section.
func (s *Stream) startSection(trailer bool) {
	*s = Stream{state: inLine, trailer: trailer, firstLine: !trailer}
}

// name reads the name of a field line from p[i:], up to its colon (then
// the field is known), a line ending, or the end of p. It returns where it
// stopped.
func (s *Stream) name(p []byte, i int) int {
	for ; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\r' || c == '\n':
			return i
		case c == ':':
			s.field = fieldSkip
			switch string(s.nameBuf[:s.nameLen]) {
			case "content-length":
				s.field = fieldLength
			case "transfer-encoding":
				s.field = fieldCoding
			}
			s.valLen, s.valSpace, s.valBad = 0, false, false
			return i + 1
		case s.nameLen == len(s.nameBuf):
			s.field = fieldSkip // longer than any name looked for
			return i
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		s.nameBuf[s.nameLen] = c
		s.nameLen++
	}
	return i
}

// fieldByte takes a byte of a field's value that is not a line ending.
func (s *Stream) fieldByte(c byte) {
	switch s.field {
	case fieldLength, fieldCoding:
		switch {
		case c == ' ' || c == '\t':
			s.valSpace = s.valLen > 0
		case s.valSpace || s.valLen == len(s.val):
			s.valBad = true // neither a length nor "chunked" looks like that
		default:
			s.val[s.valLen] = c
			s.valLen++
		}
	}
}

// endLine ends a line of a head or trailer section (not the empty one).
func (s *Stream) endLine() {
	if s.firstLine {
		s.firstLine = false
		return
	}
	v := s.val[:s.valLen]
	switch s.field {
	case fieldLength:
		n, ok := parseLength(v)
		if !ok || s.valBad || s.sawCL && n != s.length {
			s.badFraming = true
		}
		s.sawCL, s.length = true, n
	case fieldCoding:
		if s.valBad || s.sawTE || !equalFold(v, "chunked") {
			s.badFraming = true
		}
		s.sawTE = true
	}
	s.field = fieldSkip
}

// endSection ends a head, starting its body, or a trailer section.
func (s *Stream) endSection() {
	switch {
	case s.trailer:
		s.state = atRequest
	case s.badFraming || s.sawCL && s.sawTE:
		s.state = unchecked
	case s.sawTE:
		s.state, s.left, s.hex = inChunkSize, 0, 0
	case s.length > 0:
		s.state, s.left = inBody, s.length
	default:
		s.state = atRequest
	}
}

// parseLength reads a Content-Length value as CheckHeaders accepts it.
func parseLength(v []byte) (uint64, bool) {
	if !validContentLength(v) {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

func indexCRLF(p []byte) int {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		i = len(p)
	}
	if j := bytes.IndexByte(p[:i], '\r'); j >= 0 {
		return j
	}
	if i == len(p) {
		return -1
	}
	return i
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
