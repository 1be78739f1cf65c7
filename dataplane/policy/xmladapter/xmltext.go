package xmladapter

import (
	"bytes"
	"encoding/xml"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// isNCName reports whether s is an XML name without a colon (Namespaces
// in XML's NCName): what an element or attribute name written without a
// prefix may be. ASCII names are checked here; a name with other
// characters is checked by encoding/xml, whose tables (XML 1.0 fourth
// edition) are narrower than the fifth edition's, so that the name is one
// that older parsers accept too.
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return xmlAcceptsName(s)
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case i > 0 && ('0' <= c && c <= '9' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// xmlAcceptsName reports whether encoding/xml reads s as an element name
// without a prefix.
func xmlAcceptsName(s string) bool {
	if !utf8.ValidString(s) || strings.ContainsAny(s, ":<>/") {
		return false
	}
	tok, err := xml.NewDecoder(strings.NewReader("<" + s + "/>")).RawToken()
	start, ok := tok.(xml.StartElement)
	return err == nil && ok && start.Name.Space == "" && start.Name.Local == s && len(start.Attr) == 0
}

// isQName reports whether s is "prefix:local" or an NCName.
func isQName(s string) bool {
	prefix, local, ok := strings.Cut(s, ":")
	if !ok {
		return isNCName(s)
	}
	return isNCName(prefix) && isNCName(local)
}

// isXMLChar reports whether r may appear in an XML 1.0 document at all.
func isXMLChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || 0x20 <= r && r <= 0xD7FF ||
		0xE000 <= r && r <= 0xFFFD || 0x10000 <= r && r <= 0x10FFFF
}

// appendEscaped appends s as XML character data, or as an attribute value
// (in double quotes) when attr is set. Characters XML cannot carry at all
// (most control characters, invalid UTF-8) become U+FFFD; CR is escaped so
// a parser's line-end normalisation cannot change the value, and so are
// tabs and newlines in attributes, which normalisation would make spaces.
func appendEscaped(dst []byte, s string, attr bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		size := 1
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				esc = "&amp;"
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;" // "]]>" must not appear in text
			case c == '\r':
				esc = "&#xD;"
			case c == '"' && attr:
				esc = "&quot;"
			case c == '\n' && attr:
				esc = "&#xA;"
			case c == '\t' && attr:
				esc = "&#x9;"
			case c < ' ' && c != '\n' && c != '\t':
				esc = "\uFFFD"
			default:
				i++
				continue
			}
		} else {
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			if (r != utf8.RuneError || size > 1) && isXMLChar(r) {
				i += size
				continue
			}
			esc = "\uFFFD"
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, esc...)
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// isSpace reports whether b is only XML white space.
func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// trimSpace trims XML white space.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[:1]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1:]) {
		b = b[:len(b)-1]
	}
	return b
}

// mediaType splits a Content-Type into its type and subtype, without
// parameters; both empty when it has no '/'.
func mediaType(ct []byte) (typ, sub []byte) {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = trimSpace(ct)
	i := bytes.IndexByte(ct, '/')
	if i <= 0 || i == len(ct)-1 {
		return nil, nil
	}
	return ct[:i], ct[i+1:]
}

var (
	application = []byte("application")
	text        = []byte("text")
	xmlSub      = []byte("xml")
)

// isXMLType reports whether a Content-Type is XML: text/xml,
// application/xml or any */*+xml (application/soap+xml among them).
func isXMLType(ct []byte) bool {
	typ, sub := mediaType(ct)
	if !bytes.EqualFold(typ, application) && !bytes.EqualFold(typ, text) {
		return false
	}
	return bytes.EqualFold(sub, xmlSub) || hasSuffixFold(sub, "+xml")
}

func hasSuffixFold(s []byte, suffix string) bool {
	return len(s) > len(suffix) && strings.EqualFold(b2s(s[len(s)-len(suffix):]), suffix)
}

// b2s views bytes as a string without copying, for reads that do not keep
// the string.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
