package pgtest

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a server until the test cuts it: Cut
// drops every open connection at once and refuses new ones (accepts and
// closes them) until Restore, as when the database host goes away and
// comes back. Point a client at Addr (see WithAddr).
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
	served int
	// atCommit is armed by CutAtCommit and CutAtSending.
	atCommit   *commitCut
	commitCuts int
}

// commitCut is what CutAtCommit or CutAtSending armed.
type commitCut struct {
	marker  []byte
	deliver bool
	refuse  time.Duration
}

// commitMessage is how pgx sends COMMIT: a simple Query message ('Q',
// int32 length 11, "commit\x00").
var commitMessage = []byte("Q\x00\x00\x00\x0bcommit\x00")

// NewProxy listens on a free loopback port and forwards to target
// (host:port). It is closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// Addr is the host:port to connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every forwarded connection, both ends, and refuses new
// connections until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// CutAtCommit arms the proxy for one COMMIT: the next time a client sends
// one, its connection is dropped, and new connections are refused for
// refuse. With deliver the COMMIT reaches the server first, so the
// transaction commits but the client never hears so; without, it is lost
// with the connection and the server rolls back. The proxy must see the
// protocol: connect without TLS (see WithoutTLS).
func (p *Proxy) CutAtCommit(deliver bool, refuse time.Duration) {
	p.CutAtSending(commitMessage, deliver, refuse)
}

// CutAtSending is CutAtCommit for the first write of a client that holds
// marker: a statement that commits by itself (outside BEGIN ... COMMIT),
// found by a value it sends, such as the bytes of a record it inserts.
// With deliver the server gets the write (and the rest of that statement's
// messages, when they are in the same write) before the connection drops.
func (p *Proxy) CutAtSending(marker []byte, deliver bool, refuse time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.atCommit = &commitCut{marker: marker, deliver: deliver, refuse: refuse}
}

// CommitsCut is how many connections CutAtCommit and CutAtSending dropped.
func (p *Proxy) CommitsCut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.commitCuts
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Served is how many connections were forwarded so far.
func (p *Proxy) Served() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served
}

// commitCut reports whether chunk, on its way to the server, is the COMMIT
// CutAtCommit waits for; then it sends it on when asked to and refuses new
// connections for a while. The caller drops the connection.
func (p *Proxy) commitCut(server net.Conn, chunk []byte) bool {
	p.mu.Lock()
	c := p.atCommit
	if c == nil || !bytes.Contains(chunk, c.marker) {
		p.mu.Unlock()
		return false
	}
	p.atCommit = nil
	p.commitCuts++
	if c.refuse > 0 {
		p.cut = true
		time.AfterFunc(c.refuse, p.Restore)
	}
	p.mu.Unlock()
	if c.deliver {
		_, _ = server.Write(chunk)
	}
	return true
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.wg.Go(func() { p.forward(client) })
	}
}

func (p *Proxy) forward(client net.Conn) {
	p.mu.Lock()
	refuse := p.cut || p.closed
	p.mu.Unlock()
	if refuse {
		_ = client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed {
		// Cut while dialing.
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.conns[client] = struct{}{}
	p.conns[server] = struct{}{}
	p.served++
	p.mu.Unlock()

	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn, watch bool) {
		defer func() {
			// One side ended: end the other, as a broken route would.
			_ = dst.Close()
			_ = src.Close()
		}()
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if watch && p.commitCut(dst, buf[:n]) {
					return
				}
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Go(func() { pipe(server, client, true) })
	wg.Go(func() { pipe(client, server, false) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}
