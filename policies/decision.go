package policies

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

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
	// Sources the caller asked for; nil or empty means all.
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
	// Codes are the stable reason codes of a denial (see ReasonTypeURI),
	// sorted; empty when allowed. A denial always has at least one.
	Codes []string `json:"codes,omitempty"`
	// Notes are facts the policy wants shown with the view (e.g. deceased).
	Notes              []string              `json:"notes"`
	ProcessingActivity string                `json:"processing_activity"`
	Sources            map[string]SourceRule `json:"sources"`
	// BundleVersion is the version of the bundle that decided.
	BundleVersion string `json:"-"`
}

// Code is the one reason code a refusal's problem type names: the most
// basic of the decision's codes (a role that never sees data before a
// missing claim, claims before the purpose, the purpose before the action,
// context and subject),
// then the first of a bundle's own. It is "" for an allowed decision.
func (d Decision) Code() string {
	if d.Allow {
		return ""
	}
	best, rank := CodeDenied, len(codePrecedence)+1
	for _, c := range d.Codes {
		r := slices.Index(codePrecedence, c)
		if r < 0 {
			r = len(codePrecedence)
		}
		if r < rank {
			best, rank = c, r
		}
	}
	return best
}

// codePrecedence orders the codes of the embedded bundle from the most
// basic refusal to the most specific.
var codePrecedence = []string{
	CodeNoDataRole, CodeMissingClaim, CodePurposeMissing, CodePurposeUnknown,
	CodePurposeNotGranted, CodeActionNotGranted, CodeContextRequired,
	CodeGeheimhoudingOrganisation,
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
	// ExistenceCodes give, per existence-only domain, the reason code of
	// its "withheld" item; see ExistenceCode.
	ExistenceCodes map[string]string `json:"existence_codes,omitempty"`
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

// ExistenceCode is the reason code of a "withheld" item of domain: the
// bundle's, else CodeExistenceOnly.
func (r SourceRule) ExistenceCode(domain string) string {
	if c := r.ExistenceCodes[domain]; ValidCode(c) {
		return c
	}
	return CodeExistenceOnly
}

// Redacted is what a policy sees of input.actor.sub and input.context.id
// when they are given: decisions are about claims, never about a person or
// a case, which is what makes caching them per claim set sound.
const Redacted = "redacted"

// normalize is the input the policy sees: sub and context id redacted,
// roles and sources as sorted sets, no slices shared with the caller.
func normalize(in Input) Input {
	out := Input{Action: in.Action, Purpose: in.Purpose}
	out.Actor = Actor{Department: in.Actor.Department, Organisation: in.Actor.Organisation, Roles: sortedSet(in.Actor.Roles)}
	if in.Actor.Sub != "" {
		out.Actor.Sub = Redacted
	}
	out.Sources = sortedSet(in.Sources)
	if in.Context != nil {
		c := Context{Type: in.Context.Type}
		if in.Context.ID != "" {
			c.ID = Redacted
		}
		out.Context = &c
	}
	if in.Subject != nil {
		s := *in.Subject
		out.Subject = &s
	}
	return out
}

// sortedSet is s sorted without duplicates, in a new slice; nil when empty.
func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// cacheKey is everything a normalised input says, unambiguously: each
// string is length-prefixed, each optional part marked present or not.
func cacheKey(n Input) string {
	var b strings.Builder
	b.Grow(128)
	str := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	list := func(ss []string) {
		b.WriteString(strconv.Itoa(len(ss)))
		b.WriteByte('[')
		for _, s := range ss {
			str(s)
		}
	}
	str(n.Actor.Sub)
	str(n.Actor.Department)
	list(n.Actor.Roles)
	str(n.Actor.Organisation)
	str(n.Action)
	str(n.Purpose)
	if n.Context != nil {
		b.WriteByte('C')
		str(n.Context.Type)
		str(n.Context.ID)
	}
	b.WriteByte('|')
	list(n.Sources)
	if n.Subject != nil {
		b.WriteByte('S')
		b.WriteString(strconv.FormatBool(n.Subject.Geheimhouding))
		str(n.Subject.Opschorting)
	}
	return b.String()
}

// inputKeys are the key terms of an input document, made once per
// compiled version and shared by its evaluations (OPA never changes a
// term it is given, and shares its own interned terms the same way).
type inputKeys struct {
	sub, department, roles, organisation, actor, action, purpose, context,
	typ, id, sources, subject, geheimhouding, opschorting *ast.Term
}

func newInputKeys() *inputKeys {
	return &inputKeys{
		sub: ast.StringTerm("sub"), department: ast.StringTerm("department"), roles: ast.StringTerm("roles"),
		organisation: ast.StringTerm("organisation"), actor: ast.StringTerm("actor"), action: ast.StringTerm("action"),
		purpose: ast.StringTerm("purpose"), context: ast.StringTerm("context"), typ: ast.StringTerm("type"),
		id: ast.StringTerm("id"), sources: ast.StringTerm("sources"), subject: ast.StringTerm("subject"),
		geheimhouding: ast.StringTerm("geheimhoudingPersoonsgegevens"), opschorting: ast.StringTerm("opschortingBijhouding"),
	}
}

// value is the AST of a normalised input, exactly as encoding/json would
// render it (the same fields present or omitted), so that `opa eval` with
// the JSON input sees the same document. Objects are made from all their
// items at once, which allocates about half as much as inserting.
func (k *inputKeys) value(n Input) ast.Value {
	actor := make([][2]*ast.Term, 0, 4)
	if n.Actor.Sub != "" {
		actor = append(actor, ast.Item(k.sub, ast.StringTerm(n.Actor.Sub)))
	}
	if n.Actor.Department != "" {
		actor = append(actor, ast.Item(k.department, ast.StringTerm(n.Actor.Department)))
	}
	if len(n.Actor.Roles) > 0 {
		actor = append(actor, ast.Item(k.roles, stringsTerm(n.Actor.Roles)))
	}
	if n.Actor.Organisation != "" {
		actor = append(actor, ast.Item(k.organisation, ast.StringTerm(n.Actor.Organisation)))
	}
	items := make([][2]*ast.Term, 0, 6)
	items = append(items,
		ast.Item(k.actor, ast.ObjectTerm(actor...)),
		ast.Item(k.action, ast.StringTerm(n.Action)),
		ast.Item(k.purpose, ast.StringTerm(n.Purpose)))
	if c := n.Context; c != nil {
		items = append(items, ast.Item(k.context, ast.ObjectTerm(ast.Item(k.typ, ast.StringTerm(c.Type)), ast.Item(k.id, ast.StringTerm(c.ID)))))
	}
	if len(n.Sources) > 0 {
		items = append(items, ast.Item(k.sources, stringsTerm(n.Sources)))
	}
	if s := n.Subject; s != nil {
		subject := [][2]*ast.Term{ast.Item(k.geheimhouding, ast.BooleanTerm(s.Geheimhouding))}
		if s.Opschorting != "" {
			subject = append(subject, ast.Item(k.opschorting, ast.StringTerm(s.Opschorting)))
		}
		items = append(items, ast.Item(k.subject, ast.ObjectTerm(subject...)))
	}
	return ast.NewObject(items...)
}

func stringsTerm(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

// errNoActivity: a decision that names no processing activity.
var errNoActivity = errors.New("decision names no processing activity")

// decodeDecision reads the decision document straight from its AST, as
// strictly as encoding/json with DisallowUnknownFields would: a field of
// the wrong type or one Decision does not know is an error, null leaves a
// field empty. It applies none of finish's defaults.
func decodeDecision(v ast.Value) (Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("the decision is a %s, not an object", ast.ValueName(v))
	}
	var d Decision
	err := obj.Iter(func(k, val *ast.Term) error {
		key, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("key %v is not a string", k)
		}
		var err error
		switch key {
		case "allow":
			d.Allow, err = boolOf(val)
		case "reasons":
			d.Reasons, err = stringsOf(val)
		case "codes":
			d.Codes, err = stringsOf(val)
		case "notes":
			d.Notes, err = stringsOf(val)
		case "processing_activity":
			d.ProcessingActivity, err = stringOf(val)
		case "sources":
			d.Sources, err = sourcesOf(val)
		default:
			return fmt.Errorf("unknown field %q", string(key))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", string(key), err)
		}
		return nil
	})
	return d, err
}

// finish checks a decoded decision and fills what callers rely on: a
// denial grants no source and has a code; an allow has a reason; a list a
// source rule leaves out is empty, not null.
func finish(d Decision) (Decision, error) {
	if d.ProcessingActivity == "" {
		return Decision{}, errNoActivity
	}
	if d.Allow && len(d.Reasons) == 0 {
		d.Reasons = []string{"allowed"}
	}
	for name, r := range d.Sources {
		if r.Fields == nil || r.Domains == nil || r.ExistenceOnly == nil {
			r.Fields, r.Domains, r.ExistenceOnly = nonNil(r.Fields), nonNil(r.Domains), nonNil(r.ExistenceOnly)
			d.Sources[name] = r
		}
	}
	if !d.Allow {
		d.Sources = nil
		if len(d.Codes) == 0 {
			d.Codes = []string{CodeDenied}
		}
	}
	return d, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func isNull(t *ast.Term) bool { _, ok := t.Value.(ast.Null); return ok }

func boolOf(t *ast.Term) (bool, error) {
	switch v := t.Value.(type) {
	case ast.Boolean:
		return bool(v), nil
	case ast.Null:
		return false, nil
	}
	return false, fmt.Errorf("%s is not a boolean", ast.ValueName(t.Value))
}

func stringOf(t *ast.Term) (string, error) {
	switch v := t.Value.(type) {
	case ast.String:
		return string(v), nil
	case ast.Null:
		return "", nil
	}
	return "", fmt.Errorf("%s is not a string", ast.ValueName(t.Value))
}

func intOf(t *ast.Term) (int, error) {
	switch v := t.Value.(type) {
	case ast.Number:
		if i, ok := v.Int(); ok {
			return i, nil
		}
		return 0, fmt.Errorf("%s is not an integer", v)
	case ast.Null:
		return 0, nil
	}
	return 0, fmt.Errorf("%s is not a number", ast.ValueName(t.Value))
}

// stringsOf reads an array (or a set, which JSON renders as one) of strings.
func stringsOf(t *ast.Term) ([]string, error) {
	var out []string
	add := func(e *ast.Term) error {
		s, ok := e.Value.(ast.String)
		if !ok {
			return fmt.Errorf("an element is a %s, not a string", ast.ValueName(e.Value))
		}
		out = append(out, string(s))
		return nil
	}
	switch v := t.Value.(type) {
	case *ast.Array:
		out = make([]string, 0, v.Len())
		for i := range v.Len() {
			if err := add(v.Elem(i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case ast.Set:
		out = make([]string, 0, v.Len())
		return out, v.Iter(add)
	case ast.Null:
		return nil, nil
	}
	return nil, fmt.Errorf("%s is not an array", ast.ValueName(t.Value))
}

func stringMapOf(t *ast.Term) (map[string]string, error) {
	if isNull(t) {
		return nil, nil
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", ast.ValueName(t.Value))
	}
	out := make(map[string]string, obj.Len())
	return out, obj.Iter(func(k, v *ast.Term) error {
		ks, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("key %v is not a string", k)
		}
		s, err := stringOf(v)
		out[string(ks)] = s
		return err
	})
}

func sourcesOf(t *ast.Term) (map[string]SourceRule, error) {
	if isNull(t) {
		return nil, nil
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", ast.ValueName(t.Value))
	}
	out := make(map[string]SourceRule, obj.Len())
	return out, obj.Iter(func(k, v *ast.Term) error {
		name, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("key %v is not a string", k)
		}
		r, err := sourceRuleOf(v)
		if err != nil {
			return fmt.Errorf("%s: %w", string(name), err)
		}
		out[string(name)] = r
		return nil
	})
}

func sourceRuleOf(t *ast.Term) (SourceRule, error) {
	var r SourceRule
	if isNull(t) {
		return r, nil
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return r, fmt.Errorf("%s is not an object", ast.ValueName(t.Value))
	}
	err := obj.Iter(func(k, v *ast.Term) error {
		key, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("key %v is not a string", k)
		}
		var err error
		switch key {
		case "fields":
			r.Fields, err = stringsOf(v)
		case "domains":
			r.Domains, err = stringsOf(v)
		case "undomained":
			r.Undomained, err = boolOf(v)
		case "existence_only":
			r.ExistenceOnly, err = stringsOf(v)
		case "existence_notes":
			r.ExistenceNotes, err = stringMapOf(v)
		case "existence_codes":
			r.ExistenceCodes, err = stringMapOf(v)
		case "max_vertrouwelijkheid":
			r.MaxVertrouwelijkheid, err = stringOf(v)
		case "vertrouwelijk":
			r.Vertrouwelijk, err = boolOf(v)
		case "max_age_days":
			r.MaxAgeDays, err = intOf(v)
		case "records":
			r.Records, err = stringsOf(v)
		default:
			return fmt.Errorf("unknown field %q", string(key))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", string(key), err)
		}
		return nil
	})
	return r, err
}

// clone is a deep copy: a cached decision is shared by every request with
// the same claims, so no caller may hold a slice or map of it.
func (d Decision) clone() Decision {
	d.Reasons = slices.Clone(d.Reasons)
	d.Codes = slices.Clone(d.Codes)
	d.Notes = slices.Clone(d.Notes)
	if d.Sources != nil {
		src := make(map[string]SourceRule, len(d.Sources))
		for name, r := range d.Sources {
			r.Fields = slices.Clone(r.Fields)
			r.Domains = slices.Clone(r.Domains)
			r.ExistenceOnly = slices.Clone(r.ExistenceOnly)
			r.ExistenceNotes = maps.Clone(r.ExistenceNotes)
			r.ExistenceCodes = maps.Clone(r.ExistenceCodes)
			r.Records = slices.Clone(r.Records)
			src[name] = r
		}
		d.Sources = src
	}
	return d
}
