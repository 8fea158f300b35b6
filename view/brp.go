package view

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/policies"
)

// SourceBRP is the BRP's name in views and policies.
const SourceBRP = "brp"

// BRPClient is the BRP connector (connectors/brp) as the view uses it.
type BRPClient interface {
	// Person asks for the person with the given field paths; (nil, nil)
	// when the BRP does not know the BSN.
	Person(ctx context.Context, bsn string, fields []string) (*brp.Person, error)
}

// BRP is the BRP API Personen's part of a view: the person, with the
// permitted field paths, and the subject facts the policy acts on.
type BRP struct{ client BRPClient }

var _ Source = (*BRP)(nil)

// NewBRP wraps the BRP connector.
func NewBRP(c BRPClient) *BRP { return &BRP{client: c} }

// Name is "brp".
func (*BRP) Name() string { return SourceBRP }

// Fetch asks the BRP for exactly the rule's field paths. Errors are the
// connector's (brp.ErrFields for a rule without fields), and a
// bad_response for a person that cannot be held as JSON.
func (s *BRP) Fetch(ctx context.Context, req Request, rule policies.SourceRule) (Answer, error) {
	p, err := s.client.Person(ctx, req.BSN, rule.Fields)
	if err != nil || p == nil {
		return brpAnswer{}, err
	}
	// The connector decodes into a map; the view holds the Persoon as JSON.
	raw, err := json.Marshal(p.Data)
	if p.Data == nil {
		raw = json.RawMessage("{}") // a person without fields is still the person
	}
	if err != nil {
		return nil, fmt.Errorf("%w: brp: the person is not JSON: %v", upstream.ErrBadResponse, err)
	}
	a := brpAnswer{person: raw}
	if p.Geheimhouding || p.Opschorting != "" {
		a.facts = &policies.Subject{Geheimhouding: p.Geheimhouding, Opschorting: p.Opschorting}
	}
	return a, nil
}

// brpAnswer is the person as the BRP gave it; no person when the BRP does
// not know the BSN.
type brpAnswer struct {
	person json.RawMessage
	facts  *policies.Subject
}

// SubjectFacts are geheimhouding and opschorting, when the BRP said either.
func (a brpAnswer) SubjectFacts() *policies.Subject { return a.facts }

// autoDelivered are the BRP's own indications that come with any person;
// they tell the reader how to treat the data, so they are always kept.
var autoDelivered = []string{"geheimhoudingPersoonsgegevens", "opschortingBijhouding", "inOnderzoek", "rni", "verificatie"}

// Disclose sets the person to the rule's field paths and the indications.
func (a brpAnswer) Disclose(d *Disclosure, rule policies.SourceRule) {
	if a.person == nil {
		return
	}
	src, ok := object(a.person)
	if !ok {
		return
	}
	paths := make([][]string, 0, len(rule.Fields))
	for _, f := range rule.Fields {
		paths = append(paths, strings.Split(f, "."))
	}
	out := projectObject(src, paths)
	for _, k := range autoDelivered {
		if v, ok := src[k]; ok {
			out[k] = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return // raw values of a valid object: cannot happen
	}
	d.Person(b)
}

// projectObject keeps of the object src the field paths (BRP "fields"
// notation split at the dots: "naam", "partners.naam.voornamen"). A path
// through an array is followed in every element; a path through a scalar
// keeps nothing.
func projectObject(src map[string]json.RawMessage, paths [][]string) map[string]json.RawMessage {
	whole := map[string]bool{}
	deeper := map[string][][]string{}
	for _, p := range paths {
		if len(p) == 1 {
			whole[p[0]] = true
		} else {
			deeper[p[0]] = append(deeper[p[0]], p[1:])
		}
	}
	out := map[string]json.RawMessage{}
	for k, v := range src {
		switch {
		case whole[k]:
			out[k] = v
		case deeper[k] != nil:
			if pv, ok := projectValue(v, deeper[k]); ok {
				out[k] = pv
			}
		}
	}
	return out
}

// projectValue follows paths into an object or each element of an array
// (an element that is no object becomes {}); false for anything else.
func projectValue(v json.RawMessage, paths [][]string) (json.RawMessage, bool) {
	if obj, ok := object(v); ok {
		b, err := json.Marshal(projectObject(obj, paths))
		return b, err == nil
	}
	var elems []json.RawMessage
	if upstream.DecodeJSON(v, &elems) != nil || elems == nil {
		return nil, false
	}
	out := make([]json.RawMessage, len(elems))
	for i, e := range elems {
		out[i] = json.RawMessage("{}")
		if obj, ok := object(e); ok {
			if b, err := json.Marshal(projectObject(obj, paths)); err == nil {
				out[i] = b
			}
		}
	}
	b, err := json.Marshal(out)
	return b, err == nil
}

// object decodes v when it is a JSON object.
func object(v json.RawMessage) (map[string]json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if upstream.DecodeJSON(v, &obj) != nil || obj == nil {
		return nil, false
	}
	return obj, true
}
