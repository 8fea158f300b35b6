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

	// done is closed when the fetch has ended: answer and err are set.
	done chan struct{}
	// resolveErr is a panic of the answer's Resolve, which takes the answer
	// out once every source is done (until then others may be reading it).
	resolveErr error
}

// Fetch calls, in parallel, every source that dec permits and req asks for,
// each with its rule, and lets each answer that depends on others resolve
// (see Resolver) as soon as the sources it depends on have answered or
// failed, while the others are still on their way. Sources that are not
// permitted or not asked for are not called. A source that fails or panics
// fails alone; a panic is logged (with any BSN redacted) and reported as
// connector_error. logger nil: none.
//
// Source names must be distinct.
func Fetch(ctx context.Context, sources []Source, req Request, dec policies.Decision, logger *slog.Logger) *Fetched {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Fetched{req: req, calls: map[string]*call{}}
	var asked []Source // in the order given
	for _, src := range sources {
		name := src.Name()
		f.sources = append(f.sources, name)
		if _, permitted := dec.Sources[name]; !permitted || !req.asks(name) {
			continue
		}
		f.calls[name] = &call{called: true, done: make(chan struct{})}
		asked = append(asked, src)
	}
	var wg sync.WaitGroup
	for _, src := range asked {
		c := f.calls[src.Name()]
		wg.Go(func() {
			f.fetch(ctx, src, c, dec.Sources[src.Name()], logger)
			f.resolve(ctx, src, c, asked, logger)
		})
	}
	wg.Wait()
	for _, c := range f.calls {
		if c.resolveErr != nil {
			c.answer, c.err = nil, c.resolveErr
		}
	}
	return f
}

// fetch asks one source and closes c.done when it has its answer or error.
func (f *Fetched) fetch(ctx context.Context, src Source, c *call, rule policies.SourceRule, logger *slog.Logger) {
	defer close(c.done)
	name := src.Name()
	start := time.Now()
	defer func() {
		c.ms = time.Since(start).Milliseconds()
		if v := recover(); v != nil {
			c.answer, c.err = nil, panicked(logger, name, v)
		}
	}()
	c.answer, c.err = src.Fetch(ctx, f.req, rule)
	switch {
	case errors.Is(c.err, ErrNotConfigured):
		c.called = false
	case c.err == nil && c.answer == nil:
		logger.Error("connector contract broken: no answer and no error", "source", name)
		c.err = errConnector
	}
}

// resolve gives an answer that depends on others (a Resolver) the answers
// of the sources it depends on (every other asked source, unless src is
// Dependent) once they have come, those that answered without error, in
// the order the sources were given. A panic takes out the answer that
// panicked.
func (f *Fetched) resolve(ctx context.Context, src Source, c *call, asked []Source, logger *slog.Logger) {
	if c.err != nil {
		return
	}
	r, ok := c.answer.(Resolver)
	if !ok {
		return
	}
	dep, dependent := src.(Dependent)
	var others []Answer
	for _, o := range asked {
		if o == src || dependent && !dep.DependsOn(o) {
			continue
		}
		oc := f.calls[o.Name()]
		<-oc.done
		if oc.err == nil {
			others = append(others, oc.answer)
		}
	}
	defer func() {
		if v := recover(); v != nil {
			c.resolveErr = panicked(logger, src.Name(), v)
		}
	}()
	r.Resolve(ctx, others)
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
