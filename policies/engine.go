package policies

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// Query is the one question the gateway asks per request.
const Query = "data.klantbeeld.decision"

// Errors of the engine.
var (
	// ErrEvaluation: the bundle could not produce a decision (no result, an
	// undefined or conflicting decision, a runtime error). It fails closed.
	ErrEvaluation = errors.New("policy evaluation failed")
)

// DefaultCacheSize is how many decisions a bundle version keeps. Decisions
// are cached per claim set (department, roles, organisation, purpose,
// action, sources, context type, subject facts), never per person, so a
// municipality needs a few hundred; when the cache is full it starts over.
const DefaultCacheSize = 4096

// compiled is one bundle with its query prepared and its own decision
// cache, which goes when the version does.
type compiled struct {
	bundle  Bundle
	version string
	query   rego.PreparedEvalQuery
	cache   *decisionCache
	// packages are the first names under data of the bundle's modules,
	// which are rules, not data.json (for Explain).
	packages map[string]bool
	keys     *inputKeys
}

// Engine decides with the active bundle. It is safe for concurrent use.
type Engine struct {
	active atomic.Pointer[compiled]
	// activating serialises activations, so that each Report's Previous is
	// the version it replaced.
	activating sync.Mutex
}

// NewEngine compiles b and makes it active. It does not run Check: use it
// for a bundle that passed Check (at start, the embedded one) or in tests.
func NewEngine(ctx context.Context, b Bundle) (*Engine, error) {
	c, err := compile(ctx, b)
	if err != nil {
		return nil, err
	}
	e := &Engine{}
	e.active.Store(c)
	return e, nil
}

// Activate makes b the active bundle if it passes Check: it compiles, its
// own Rego tests pass and it keeps every guard invariant. Otherwise the
// active version stays and the error says why (ErrBundle, *TestFailure,
// *InvariantError; several joined). The swap is atomic: a Snapshot taken
// before it, and so a request in flight, keeps deciding with the version it
// started with; the new version starts with an empty decision cache.
// Rolling back is activating an earlier stored version the same way.
func (e *Engine) Activate(ctx context.Context, b Bundle) (Report, error) {
	e.activating.Lock()
	defer e.activating.Unlock()
	c, rep, err := check(ctx, b)
	rep.Previous = e.active.Load().version
	if err != nil {
		return rep, err
	}
	e.active.Store(c)
	return rep, nil
}

// Swap compiles b and, only if that succeeds, makes it active, without
// Check: for a bundle that passed it already, and for tests. Policy
// administration uses Activate. Decisions in flight finish with the bundle
// they started with.
func (e *Engine) Swap(ctx context.Context, b Bundle) error {
	c, err := compile(ctx, b)
	if err != nil {
		return err
	}
	e.activating.Lock()
	e.active.Store(c)
	e.activating.Unlock()
	return nil
}

// Bundle is the active bundle and its version.
func (e *Engine) Bundle() (Bundle, string) {
	c := e.active.Load()
	return c.bundle, c.version
}

// Version is the active bundle's version.
func (e *Engine) Version() string { return e.active.Load().version }

// Decide evaluates the active bundle for in. A bundle that errs or does not
// produce exactly one well-formed decision gives ErrEvaluation; callers must
// then refuse. A request that decides more than once should hold one
// Snapshot instead, so that all its decisions come from one version.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	return e.active.Load().decide(ctx, in)
}

// Snapshot is the active version, to decide with until the caller lets go
// of it, whatever is activated meanwhile.
func (e *Engine) Snapshot() Snapshot { return Snapshot{e.active.Load()} }

// CacheStats are the active version's decision cache counters.
func (e *Engine) CacheStats() CacheStats { return e.active.Load().cache.stats() }

// Snapshot is one compiled bundle version. Its zero value is not usable;
// get one from Engine.Snapshot or Compile.
type Snapshot struct{ c *compiled }

// Compile compiles b on its own, outside any engine, e.g. for a dry run. It
// runs no checks.
func Compile(ctx context.Context, b Bundle) (Snapshot, error) {
	c, err := compile(ctx, b)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{c}, nil
}

// Decide is Engine.Decide with this version.
func (s Snapshot) Decide(ctx context.Context, in Input) (Decision, error) {
	return s.c.decide(ctx, in)
}

// Valid says whether s holds a compiled version (the zero value does not).
func (s Snapshot) Valid() bool { return s.c != nil }

// Version is this version's content hash.
func (s Snapshot) Version() string { return s.c.version }

// Bundle is this version's bundle.
func (s Snapshot) Bundle() Bundle { return s.c.bundle }

// decide answers from the cache, else evaluates and caches. It returns a
// copy the caller may change.
func (c *compiled) decide(ctx context.Context, in Input) (Decision, error) {
	n := normalize(in)
	key := cacheKey(n)
	if d, ok := c.cache.get(key); ok {
		return d.clone(), nil
	}
	d, err := c.decideFresh(ctx, n)
	if err != nil {
		return Decision{}, err
	}
	c.cache.put(key, d)
	return d.clone(), nil
}

// decideFresh evaluates a normalised input, bypassing the cache.
func (c *compiled) decideFresh(ctx context.Context, n Input) (Decision, error) {
	d, err := c.evaluate(ctx, n)
	if err != nil {
		return Decision{}, err
	}
	if d, err = finish(d); err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrEvaluation, err)
	}
	return d, nil
}

// evaluate runs the prepared query on a normalised input and decodes the
// decision, without finish's checks and defaults (the guard looks at what
// the bundle itself said).
func (c *compiled) evaluate(ctx context.Context, n Input, opts ...rego.EvalOption) (Decision, error) {
	opts = append(opts, rego.EvalParsedInput(c.keys.value(n)))
	rs, err := c.query.Eval(ctx, opts...)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrEvaluation, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, fmt.Errorf("%w: %s is undefined", ErrEvaluation, Query)
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return Decision{}, fmt.Errorf("%w: unexpected result %T", ErrEvaluation, rs[0].Expressions[0].Value)
	}
	d, err := decodeDecision(t.Value)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: malformed decision: %v", ErrEvaluation, err)
	}
	d.BundleVersion = c.version
	return d, nil
}

// keepAST hands results over as the AST they are: the engine decodes the
// decision from it directly instead of through Go maps and JSON.
func keepAST(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// compile parses every module, loads data.json and prepares Query over the
// non-test modules.
func compile(ctx context.Context, b Bundle) (*compiled, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	modules, store, err := parse(b)
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){
		rego.Query(Query), rego.Store(store), rego.StrictBuiltinErrors(true), rego.GenerateJSON(keepAST),
	}
	packages := map[string]bool{}
	for name, m := range modules {
		if !IsTestFile(name) {
			opts = append(opts, rego.ParsedModule(m))
			if p := m.Package.Path; len(p) > 1 {
				if s, ok := p[1].Value.(ast.String); ok {
					packages[string(s)] = true
				}
			}
		}
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	return &compiled{bundle: b, version: b.Version(), query: pq, cache: newDecisionCache(DefaultCacheSize), packages: packages, keys: newInputKeys()}, nil
}

// parse parses the modules and loads data.json into a store that hands out
// AST values, so evaluation does not convert the data on every read.
func parse(b Bundle) (map[string]*ast.Module, storage.Store, error) {
	modules := map[string]*ast.Module{}
	var errs []string
	for name, src := range b.Files {
		if !strings.HasSuffix(name, ".rego") {
			continue
		}
		m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		modules[name] = m
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("%w: %s", ErrBundle, strings.Join(errs, "; "))
	}
	var data map[string]any
	if err := util.UnmarshalJSON(b.Files[DataFile], &data); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrBundle, DataFile, err)
	}
	if data == nil {
		return nil, nil, fmt.Errorf("%w: %s is not a JSON object", ErrBundle, DataFile)
	}
	return modules, inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true)), nil
}

// CacheStats count a version's decision cache.
type CacheStats struct {
	Hits, Misses uint64
	Entries      int
}

// decisionCache is a capped map of finished decisions by cacheKey. Full, it
// starts over rather than tracking recency: the claim sets of a
// municipality fit many times over, so a reset is rare and cheap.
type decisionCache struct {
	mu           sync.RWMutex
	m            map[string]Decision
	max          int
	hits, misses atomic.Uint64
}

func newDecisionCache(max int) *decisionCache {
	return &decisionCache{m: make(map[string]Decision), max: max}
}

func (c *decisionCache) get(key string) (Decision, bool) {
	c.mu.RLock()
	d, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return d, ok
}

func (c *decisionCache) put(key string, d Decision) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[key] = d
	c.mu.Unlock()
}

func (c *decisionCache) stats() CacheStats {
	c.mu.RLock()
	n := len(c.m)
	c.mu.RUnlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: n}
}
