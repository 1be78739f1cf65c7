//go:build unix

package listener

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// browserFields are the fields of a typical browser request.
var browserFields = [][2]string{
	{"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"},
	{"accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"},
	{"accept-language", "en-GB,en;q=0.9,de;q=0.8"},
	{"accept-encoding", "gzip, deflate, br, zstd"},
	{"cookie", "session=4b1d0c1e3f0a4a7e9c550a3f1d2b6e7f; theme=dark"},
	{"sec-fetch-mode", "navigate"},
}

// BenchmarkHTTP2 measures HTTP/2 requests through the whole server, with
// and without the guard, over loopback on one connection. cpu-ns/op is the
// processor time of the process (client and server) per request, which a
// busy machine disturbs less than the time per request.
func BenchmarkHTTP2(b *testing.B) {
	upload := bytes.Repeat([]byte("x"), 64<<10)
	for _, guard := range []bool{false, true} {
		name := "unguarded"
		if guard {
			name = "guarded"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			m := NewMux(ln, HTTP2Handler(func(ctx *fasthttp.RequestCtx) {
				if ctx.IsPost() {
					io.Copy(io.Discard, ctx.RequestBodyStream())
				}
				ctx.WriteString("ok")
			}), 10*time.Second, 16<<10)
			m.guard = guard
			go m.Serve()
			defer m.Shutdown(context.Background())
			var h2c http.Protocols
			h2c.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: &h2c}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			url := "http://" + ln.Addr().String() + "/bench"
			do := func(b *testing.B, method string, body []byte) {
				req, _ := http.NewRequest(method, url, bytes.NewReader(body))
				for _, f := range browserFields {
					req.Header.Set(f[0], f[1])
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.Run("GET", func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b)()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						do(b, "GET", nil)
					}
				})
			})
			b.Run("POST 64KiB", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(upload)))
				defer reportCPU(b)()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						do(b, "POST", upload)
					}
				})
			})
		})
	}
}

// reportCPU reports the process's processor time per operation when the
// function it returns is called.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkH2GuardRead measures the guard alone: the server's frame reader
// reading requests (a header block of browser fields, then a PING and a
// WINDOW_UPDATE) from memory, through the guard or not. Memory reads cost
// nothing, so this is the guard's whole cost per request; on a socket the
// guard also saves the server a read system call per frame. "indexed":
// the client's HPACK table holds the fields after the first request, as
// browsers' does; "literal": no table, every field is Huffman-coded text,
// the dearest case for the guard's decoder.
func BenchmarkH2GuardRead(b *testing.B) {
	for _, table := range []string{"indexed", "literal"} {
		data := recordRequests(1000, table == "literal")
		for _, guard := range []bool{false, true} {
			name := table + "/unguarded"
			if guard {
				name = table + "/guarded"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				limits := defaultH2Limits
				limits.Pings.Burst = 1e9
				for done := 0; done < b.N; done += 1000 {
					var conn net.Conn = &memConn{r: bytes.NewReader(data)}
					if guard {
						conn = newH2Guard(conn, nil, maxFrameSize, &limits, nil)
					}
					fr := http2.NewFramer(io.Discard, conn)
					fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
					for {
						if _, err := fr.ReadFrame(); err != nil {
							if err != io.EOF {
								b.Fatal(err)
							}
							break
						}
					}
				}
			})
		}
	}
}

// recordRequests returns the frames of n requests on one connection.
func recordRequests(n int, literal bool) []byte {
	var stream, block bytes.Buffer
	fr := http2.NewFramer(&stream, nil)
	enc := hpack.NewEncoder(&block)
	if literal {
		enc.SetMaxDynamicTableSize(0)
	}
	for i := 0; i < n; i++ {
		block.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/page/" + strings.Repeat("x", i%7)}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		for _, f := range browserFields {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
		fr.WritePing(false, [8]byte{})
		fr.WriteWindowUpdate(0, 1<<16)
	}
	return stream.Bytes()
}

// memConn is a connection whose client has sent r.
type memConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *memConn) Read(p []byte) (int, error) { return c.r.Read(p) }
