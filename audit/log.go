package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// LogOptions tune a Log. Zero values mean the defaults.
type LogOptions struct {
	// MaxBatch events go into one transaction at most; 0: 256.
	MaxBatch int
	// WriteTimeout bounds one batch write; 0: 5 s. The write does not use
	// the caller's context, so a client that hangs up cannot cancel it.
	WriteTimeout time.Duration
	// Observe, when set, is told of every batch written: how many events
	// it carried, how long the store took to commit it and its error
	// (metrics). It runs on the writer goroutine: it must be quick.
	Observe func(events int, commit time.Duration, err error)
}

// Log appends events through one writer goroutine that batches the events
// waiting at that moment into one transaction (group commit) and then
// releases every waiter with its sequence number or the error.
type Log struct {
	store   Store
	opts    LogOptions
	pending chan *pending
	stop    chan struct{}
	done    chan struct{}

	mu     sync.RWMutex
	closed bool
}

type pending struct {
	event Event
	seq   int64
	err   error
	done  chan struct{}
}

// NewLog starts the writer for store. Close stops it.
func NewLog(store Store, opts LogOptions) *Log {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	l := &Log{
		store:   store,
		opts:    opts,
		pending: make(chan *pending, opts.MaxBatch),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go l.run()
	return l
}

// Append records ev and returns its sequence number once it is durably
// stored. It waits for the write even when ctx is done: an event that was
// handed over is either stored or reported failed, never in doubt. Errors
// wrap ErrUnavailable or ErrClosed.
func (l *Log) Append(_ context.Context, ev Event) (int64, error) {
	p := &pending{event: ev, done: make(chan struct{})}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return 0, ErrClosed
	}
	l.pending <- p
	l.mu.RUnlock()
	<-p.done
	return p.seq, p.err
}

// Ping checks the store.
func (l *Log) Ping(ctx context.Context) error { return l.store.Ping(ctx) }

// Close writes what is waiting and stops the writer. It does not close the store.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.stop)
	l.mu.Unlock()
	<-l.done
	return nil
}

func (l *Log) run() {
	defer close(l.done)
	batch := make([]*pending, 0, l.opts.MaxBatch)
	for {
		select {
		case p := <-l.pending:
			batch = append(batch[:0], p)
		case <-l.stop:
			// Appends that got in before Close are still written.
			for {
				select {
				case p := <-l.pending:
					l.write([]*pending{p})
				default:
					return
				}
			}
		}
		// The waiters just released by the last write may be on their way
		// back with their next events: yield while more keep coming (a
		// few times at most, microseconds), so that one transaction takes
		// them all instead of half.
		for prev, i := -1, 0; i < 4 && len(l.pending) > prev && len(l.pending) < l.opts.MaxBatch-1; i++ {
			prev = len(l.pending)
			runtime.Gosched()
		}
	drain:
		for len(batch) < l.opts.MaxBatch {
			select {
			case p := <-l.pending:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		l.write(batch)
	}
}

func (l *Log) write(batch []*pending) {
	events := make([]Event, len(batch))
	for i, p := range batch {
		events[i] = p.event
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.WriteTimeout)
	start := time.Now()
	seqs, err := l.store.Append(ctx, events)
	took := time.Since(start)
	cancel()
	if err == nil && len(seqs) != len(batch) {
		err = fmt.Errorf("%w: store returned %d sequence numbers for %d events", ErrUnavailable, len(seqs), len(batch))
	}
	if err != nil && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for i, p := range batch {
		if err != nil {
			p.err = err
		} else {
			p.seq = seqs[i]
		}
		close(p.done)
	}
	// After the waiters are released: they need not wait for it.
	if l.opts.Observe != nil {
		l.opts.Observe(len(batch), took, err)
	}
}
