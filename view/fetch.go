package view

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/policies"
)

// Fetched is what the sources answered for one view, not yet disclosed.
type Fetched struct {
	req     Request
	sources []string         // every source's name, in the order given to Fetch
	calls   map[string]*call // only sources that were permitted and asked for
}

// call is what happened with one source.
type call struct {
	called bool // a request may have left for the source
	ms     int64
	answer Answer // nil when err is set
	err    error
}

// Fetch calls, in parallel, every source that dec permits and req asks for,
// each with its rule, and then lets the answers that depend on others
// resolve (see Resolver). Sources that are not permitted or not asked for are
// not called. A source that fails or panics fails alone; a panic is logged
// (with any BSN redacted) and reported as connector_error. logger nil: none.
//
// Source names must be distinct.
func Fetch(ctx context.Context, sources []Source, req Request, dec policies.Decision, logger *slog.Logger) *Fetched {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Fetched{req: req, calls: map[string]*call{}}
	var wg sync.WaitGroup
	for _, src := range sources {
		name := src.Name()
		f.sources = append(f.sources, name)
		rule, permitted := dec.Sources[name]
		if !permitted || !req.asks(name) {
			continue
		}
		c := &call{called: true}
		f.calls[name] = c
		wg.Go(func() {
			start := time.Now()
			defer func() {
				c.ms = time.Since(start).Milliseconds()
				if v := recover(); v != nil {
					c.answer, c.err = nil, panicked(logger, name, v)
				}
			}()
			c.answer, c.err = src.Fetch(ctx, req, rule)
			switch {
			case errors.Is(c.err, ErrNotConfigured):
				c.called = false
			case c.err == nil && c.answer == nil:
				logger.Error("connector contract broken: no answer and no error", "source", name)
				c.err = errConnector
			}
		})
	}
	wg.Wait()
	f.resolve(ctx, logger)
	return f
}

// resolve gives every answer that depends on others the answers of the
// sources that answered. A panic takes out the answer that panicked.
func (f *Fetched) resolve(ctx context.Context, logger *slog.Logger) {
	var answered []string
	for _, name := range f.sources {
		if c, ok := f.calls[name]; ok && c.err == nil {
			answered = append(answered, name)
		}
	}
	var wg sync.WaitGroup
	for _, name := range answered {
		c := f.calls[name]
		r, ok := c.answer.(Resolver)
		if !ok {
			continue
		}
		var others []Answer
		for _, o := range answered {
			if o != name {
				others = append(others, f.calls[o].answer)
			}
		}
		wg.Go(func() {
			defer func() {
				if v := recover(); v != nil {
					c.answer, c.err = nil, panicked(logger, name, v)
				}
			}()
			r.Resolve(ctx, others)
		})
	}
	wg.Wait()
}

// panicked logs a connector's panic and returns the error that takes out
// its part of the view, not the process.
func panicked(logger *slog.Logger, source string, v any) error {
	logger.Error("connector panic", "source", source, "panic", bsn.Redact(fmt.Sprint(v)), "stack", string(debug.Stack()))
	return fmt.Errorf("%w: %s panicked", errConnector, source)
}

// Subject returns the facts about the resident that the answers told (the
// BRP's geheimhouding and opschorting), or nil when none did. The gateway
// puts them in the policy input and asks again; that decision rules the
// disclosure.
func (f *Fetched) Subject() *policies.Subject {
	for _, name := range f.sources {
		c, ok := f.calls[name]
		if !ok || c.err != nil {
			continue
		}
		if s, ok := c.answer.(SubjectFacts); ok {
			if facts := s.SubjectFacts(); facts != nil {
				return facts
			}
		}
	}
	return nil
}

// Refused is the audit record of a fetch whose answers are not disclosed
// (a later decision refused the view): per source whether it was called,
// nothing disclosed, and not_requested or denied.
func (f *Fetched) Refused() []audit.SourceAccess {
	out := make([]audit.SourceAccess, 0, len(f.sources))
	for _, name := range f.sources {
		status := StatusDenied
		if !f.req.asks(name) {
			status = StatusNotRequested
		}
		c, ok := f.calls[name]
		out = append(out, audit.SourceAccess{Source: name, Status: status, Called: ok && c.called})
	}
	return out
}

// asks reports whether the request asks for source.
func (r Request) asks(source string) bool {
	return len(r.Sources) == 0 || slices.Contains(r.Sources, source)
}
