package policies

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Explanation is a dry run of one decision: what the bundle decided, the
// input as the policy saw it, and which of its rules and data decided.
type Explanation struct {
	Version  string   `json:"version"`
	Input    Input    `json:"input"`
	Decision Decision `json:"decision"`
	// Rules are the bundle's rules whose body held, in order of location;
	// for rules that add to a set or object (deny, granted, notes) once
	// per element they added.
	Rules []FiredRule `json:"rules"`
	// Data are the data.json documents the rules read, e.g.
	// data.purposes.klantcontact.
	Data []string `json:"data"`
}

// FiredRule is one rule that held.
type FiredRule struct {
	// Rule is the document it defines, e.g. data.klantbeeld.deny.
	Rule string `json:"rule"`
	// Location is file:line of the rule.
	Location string `json:"location"`
	// Element is what a set or object rule added: a denial's code and
	// reason, a granted source's name, a note.
	Element any `json:"element,omitempty"`
}

// Explain decides in with b, compiled on its own (no checks, no cache),
// and explains the decision. Use it to try a proposed bundle.
func Explain(ctx context.Context, b Bundle, in Input) (Explanation, error) {
	s, err := Compile(ctx, b)
	if err != nil {
		return Explanation{}, err
	}
	return s.Explain(ctx, in)
}

// Explain decides in with this version, bypassing the cache, and traces
// the evaluation to say which rules and data decided. It is slower than
// Decide by far: for dry runs, not for requests.
func (s Snapshot) Explain(ctx context.Context, in Input) (Explanation, error) {
	n := normalize(in)
	tr := &explainTracer{c: s.c, seen: map[string]bool{}, data: map[string]bool{}}
	d, err := s.c.evaluate(ctx, n, rego.EvalQueryTracer(tr))
	if err != nil {
		return Explanation{}, err
	}
	if d, err = finish(d); err != nil {
		return Explanation{}, fmt.Errorf("%w: %v", ErrEvaluation, err)
	}
	slices.SortStableFunc(tr.rules, func(a, b FiredRule) int { return compareLocation(a.Location, b.Location) })
	if tr.rules == nil {
		tr.rules = []FiredRule{}
	}
	return Explanation{Version: s.c.version, Input: n, Decision: d, Rules: tr.rules, Data: sortedKeys(tr.data)}, nil
}

// explainTracer notes rules that held and data that was read as the
// evaluation goes: an event's bindings are only valid while it happens.
type explainTracer struct {
	c     *compiled
	rules []FiredRule
	seen  map[string]bool
	data  map[string]bool
}

// Enabled, Config and TraceEvent make it a topdown.QueryTracer.
func (*explainTracer) Enabled() bool { return true }

func (*explainTracer) Config() topdown.TraceConfig { return topdown.TraceConfig{} }

func (t *explainTracer) TraceEvent(e topdown.Event) {
	switch {
	case e.Op == topdown.ExitOp && e.HasRule():
		if f, ok := firedRule(&e); ok {
			key := f.Location + "\x00" + fmt.Sprint(f.Element)
			if !t.seen[key] {
				t.seen[key] = true
				t.rules = append(t.rules, f)
			}
		}
	case e.Op == topdown.EvalOp && e.HasExpr():
		ast.WalkRefs(e.Node.(*ast.Expr), func(r ast.Ref) bool {
			if !r.HasPrefix(ast.DefaultRootRef) {
				return false
			}
			if p, ok := e.Plug(ast.NewTerm(r)).Value.(ast.Ref); ok {
				if doc := t.c.dataDocument(p); doc != "" {
					t.data[doc] = true
				}
			}
			return false
		})
	}
}

// firedRule describes the rule an Exit event left, skipping functions
// (helpers called with arguments, not documents of the decision).
func firedRule(e *topdown.Event) (FiredRule, bool) {
	rule, ok := e.Node.(*ast.Rule)
	if !ok || len(rule.Head.Args) > 0 || rule.Module == nil {
		return FiredRule{}, false
	}
	f := FiredRule{Rule: rule.Module.Package.Path.Extend(rule.Head.Ref().GroundPrefix()).String()}
	if loc := rule.Location; loc != nil {
		f.Location = fmt.Sprintf("%s:%d", loc.File, loc.Row)
	}
	if rule.Head.RuleKind() == ast.MultiValue || len(rule.Head.Ref()) > len(rule.Head.Ref().GroundPrefix()) {
		var elem *ast.Term
		if k := rule.Head.Key; k != nil {
			elem = e.Plug(k)
		} else if ref := rule.Head.Ref(); len(ref) > 0 {
			elem = e.Plug(ref[len(ref)-1])
		}
		if elem != nil && elem.IsGround() {
			if v, err := ast.JSON(elem.Value); err == nil {
				f.Element = v
			}
		}
	}
	return f, true
}

// dataDocument is a ground ref into the base documents (data.json) as a
// path, or "" for a ref into the policy's own rules or a non-ground one.
func (c *compiled) dataDocument(r ast.Ref) string {
	if !r.IsGround() || len(r) < 2 || !r.HasPrefix(ast.DefaultRootRef) {
		return ""
	}
	if s, ok := r[1].Value.(ast.String); ok && c.packages[string(s)] {
		return ""
	}
	parts := make([]string, 0, len(r)-1)
	for _, t := range r[1:] {
		switch v := t.Value.(type) {
		case ast.String:
			parts = append(parts, string(v))
		default:
			parts = append(parts, t.String())
		}
	}
	return "data." + strings.Join(parts, ".")
}

// compareLocation orders "file:line" by file, then line as a number.
func compareLocation(a, b string) int {
	fa, la, _ := strings.Cut(a, ":")
	fb, lb, _ := strings.Cut(b, ":")
	if c := strings.Compare(fa, fb); c != 0 {
		return c
	}
	// A location without a number sorts as line 0.
	na, _ := strconv.Atoi(la)
	nb, _ := strconv.Atoi(lb)
	return na - nb
}
