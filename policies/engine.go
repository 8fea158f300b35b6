package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// Query is the one question the gateway asks per request.
const Query = "data.klantbeeld.decision"

// Actions an Input can ask about.
const (
	ActionResidentView  = "resident-view"
	ActionSubjectAccess = "subject-access"
)

// Input is what a decision is about.
type Input struct {
	Actor   Actor    `json:"actor"`
	Action  string   `json:"action"`
	Purpose string   `json:"purpose"`
	Context *Context `json:"context,omitempty"`
	// Sources the caller asked for; nil means all.
	Sources []string `json:"sources,omitempty"`
	// Subject holds what the BRP told about the resident, once known.
	Subject *Subject `json:"subject,omitempty"`
}

// Actor is the caller, from the token's claims.
type Actor struct {
	Sub          string   `json:"sub,omitempty"`
	Department   string   `json:"department,omitempty"`
	Roles        []string `json:"roles,omitempty"`
	Organisation string   `json:"organisation,omitempty"`
}

// Context names the klantcontact, zaak or interne taak that justifies a look-up.
type Context struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Subject are facts about the resident that policies may act on.
type Subject struct {
	Geheimhouding bool   `json:"geheimhoudingPersoonsgegevens"`
	Opschorting   string `json:"opschortingBijhouding,omitempty"`
}

// Decision is the policy's answer.
type Decision struct {
	Allow   bool     `json:"allow"`
	Reasons []string `json:"reasons"`
	// Notes are facts the policy wants shown with the view (e.g. deceased).
	Notes              []string              `json:"notes"`
	ProcessingActivity string                `json:"processing_activity"`
	Sources            map[string]SourceRule `json:"sources"`
	// BundleVersion is the version of the bundle that decided.
	BundleVersion string `json:"-"`
}

// SourceRule says what may leave one source. A source without a rule in the
// decision is not called.
type SourceRule struct {
	// Fields of a record (for the BRP: field paths) that may be disclosed.
	Fields []string `json:"fields"`
	// Domains whose records may be disclosed.
	Domains []string `json:"domains"`
	// Undomained: records that belong to no domain may be disclosed.
	Undomained bool `json:"undomained"`
	// ExistenceOnly domains are only counted (in "withheld"), never shown.
	ExistenceOnly []string `json:"existence_only"`
	// ExistenceNotes say, per existence-only domain, whom to contact.
	ExistenceNotes map[string]string `json:"existence_notes,omitempty"`
	// MaxVertrouwelijkheid is the most restricted aanduiding that may be disclosed.
	MaxVertrouwelijkheid string `json:"max_vertrouwelijkheid,omitempty"`
	// Vertrouwelijk: records marked vertrouwelijk may be disclosed.
	Vertrouwelijk bool `json:"vertrouwelijk"`
	// MaxAgeDays limits contacts and calls to this many days back; 0: no limit.
	MaxAgeDays int `json:"max_age_days,omitempty"`
	// Records are the kinds of record that may be disclosed (Salesforce:
	// cases, callbacks, open-callbacks, calls).
	Records []string `json:"records,omitempty"`
}

// Errors of the engine.
var (
	// ErrEvaluation: the bundle could not produce a decision (no result, an
	// undefined or conflicting decision, a runtime error). It fails closed.
	ErrEvaluation = errors.New("policy evaluation failed")
)

// compiled is one bundle with its query prepared.
type compiled struct {
	bundle  Bundle
	version string
	query   rego.PreparedEvalQuery
}

// Engine decides with the active bundle. It is safe for concurrent use.
type Engine struct {
	active atomic.Pointer[compiled]
}

// NewEngine compiles b and makes it active.
func NewEngine(ctx context.Context, b Bundle) (*Engine, error) {
	c, err := compile(ctx, b)
	if err != nil {
		return nil, err
	}
	e := &Engine{}
	e.active.Store(c)
	return e, nil
}

// Swap compiles b and, only if that succeeds, makes it active. Decisions in
// flight finish with the bundle they started with.
func (e *Engine) Swap(ctx context.Context, b Bundle) error {
	c, err := compile(ctx, b)
	if err != nil {
		return err
	}
	e.active.Store(c)
	return nil
}

// Bundle is the active bundle and its version.
func (e *Engine) Bundle() (Bundle, string) {
	c := e.active.Load()
	return c.bundle, c.version
}

// Decide evaluates the active bundle for in. A bundle that errs or does not
// produce exactly one well-formed decision gives ErrEvaluation; callers must
// then refuse.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	return e.active.Load().decide(ctx, in)
}

func (c *compiled) decide(ctx context.Context, in Input) (Decision, error) {
	value, err := inputValue(in)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: input: %v", ErrEvaluation, err)
	}
	rs, err := c.query.Eval(ctx, rego.EvalParsedInput(value))
	if err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrEvaluation, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, fmt.Errorf("%w: %s is undefined", ErrEvaluation, Query)
	}
	d, err := parseDecision(rs[0].Expressions[0].Value)
	if err != nil {
		return Decision{}, err
	}
	d.BundleVersion = c.version
	return d, nil
}

// inputValue converts in to an AST value without a JSON round trip per field.
func inputValue(in Input) (ast.Value, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return ast.ValueFromReader(bytes.NewReader(b))
}

func parseDecision(v any) (Decision, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrEvaluation, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d Decision
	if err := dec.Decode(&d); err != nil {
		return Decision{}, fmt.Errorf("%w: malformed decision: %v", ErrEvaluation, err)
	}
	if d.ProcessingActivity == "" {
		return Decision{}, fmt.Errorf("%w: decision names no processing activity", ErrEvaluation)
	}
	if d.Allow && len(d.Reasons) == 0 {
		d.Reasons = []string{"allowed"}
	}
	if !d.Allow {
		d.Sources = nil
	}
	return d, nil
}

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
	opts := []func(*rego.Rego){rego.Query(Query), rego.Store(store), rego.StrictBuiltinErrors(true)}
	for name, m := range modules {
		if !IsTestFile(name) {
			opts = append(opts, rego.ParsedModule(m))
		}
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	return &compiled{bundle: b, version: b.Version(), query: pq}, nil
}

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
	return modules, inmem.NewFromObject(data), nil
}
