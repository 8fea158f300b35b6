package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test.
type TestResult struct {
	Package  string
	Name     string
	Pass     bool
	Skip     bool
	Err      string // compile or runtime error, if any
	Location string // file:line of the test
	Duration time.Duration
}

// RunTests runs the bundle's _test.rego tests. An error means the tests
// could not run at all (e.g. a module does not compile).
func RunTests(ctx context.Context, b Bundle) ([]TestResult, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	modules, store, err := parse(b)
	if err != nil {
		return nil, err
	}
	ch, err := tester.NewRunner().
		SetStore(store).
		CapturePrintOutput(true).
		SetTimeout(30*time.Second).
		SetModules(modules).
		RunTests(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{
			Package:  strings.TrimPrefix(r.Package, "data."),
			Name:     r.Name,
			Pass:     r.Pass(),
			Skip:     r.Skip,
			Duration: r.Duration,
		}
		if r.Error != nil {
			tr.Err = r.Error.Error()
		}
		if r.Location != nil {
			tr.Location = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
		}
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Location < out[j].Location })
	return out, nil
}

// ErrGuard is wrapped by every broken invariant Guard reports.
var ErrGuard = errors.New("policy bundle breaks an invariant")

// Guard checks the invariants no bundle may break, whatever its Rego or data
// say, by asking it about every purpose it defines for a range of actors:
//   - no purpose of department burgerzaken (nor any decision for a
//     burgerzaken employee) discloses SOCZA from any source, not even its existence;
//   - auditors and privacy officers never receive resident data;
//   - an unknown purpose, a purpose not granted to the actor's department,
//     or a token missing sub, department or the employee role is denied;
//   - a resident with geheimhoudingPersoonsgegevens is never disclosed to an organisation;
//   - every decision names its processing activity.
//
// It returns every violation found, joined.
func Guard(ctx context.Context, b Bundle) error {
	c, err := compile(ctx, b)
	if err != nil {
		return err
	}
	var doc struct {
		Purposes map[string]struct {
			Departments   []string `json:"departments"`
			Organisations []string `json:"organisations"`
			Actions       []string `json:"actions"`
		} `json:"purposes"`
	}
	if err := json.Unmarshal(b.Files[DataFile], &doc); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBundle, DataFile, err)
	}
	depts := []string{"burgerzaken", "sociale-zaken", "kcc", "belastingen"}
	purposes := []string{"ongeregistreerd-doel"}
	for name, p := range doc.Purposes {
		purposes = append(purposes, name)
		for _, d := range p.Departments {
			if d != "*" && !slices.Contains(depts, d) {
				depts = append(depts, d)
			}
		}
	}
	sort.Strings(purposes)

	var errs []error
	fail := func(in Input, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s (actor %+v, action %s, purpose %q)", ErrGuard, fmt.Sprintf(format, args...), in.Actor, in.Action, in.Purpose))
	}
	decide := func(in Input) (Decision, bool) {
		d, err := c.decide(ctx, in)
		if err != nil {
			fail(in, "no decision: %v", err)
			return Decision{}, false
		}
		return d, true
	}
	actions := []string{ActionResidentView, ActionSubjectAccess}

	for _, purpose := range purposes {
		p, known := doc.Purposes[purpose]
		burzaPurpose := slices.Contains(p.Departments, "burgerzaken")
		for _, action := range actions {
			for _, dept := range depts {
				in := Input{Actor: Actor{Sub: "guard", Department: dept, Roles: []string{"medewerker"}}, Action: action, Purpose: purpose}
				d, ok := decide(in)
				if !ok {
					continue
				}
				granted := slices.Contains(p.Departments, dept) || slices.Contains(p.Departments, "*")
				if d.Allow && (!known || !granted) {
					fail(in, "allowed although the purpose is unknown or not granted to the department")
				}
				if d.Allow && (burzaPurpose || dept == "burgerzaken") {
					for src, rule := range d.Sources {
						if slices.Contains(rule.Domains, "SOCZA") || slices.Contains(rule.ExistenceOnly, "SOCZA") {
							fail(in, "burgerzaken would receive SOCZA from %s", src)
						}
					}
				}
				for _, roles := range [][]string{{"auditor"}, {"privacy-officer"}, {"medewerker", "auditor"}, {"medewerker", "privacy-officer"}} {
					in := in
					in.Actor.Roles = roles
					if d, ok := decide(in); ok && d.Allow {
						fail(in, "roles %v would receive resident data", roles)
					}
				}
				for _, broken := range []Actor{
					{Department: dept, Roles: []string{"medewerker"}},
					{Sub: "guard", Roles: []string{"medewerker"}},
					{Sub: "guard", Department: dept},
				} {
					in := in
					in.Actor = broken
					if d, ok := decide(in); ok && d.Allow {
						fail(in, "allowed with a claim missing")
					}
				}
			}
			orgs := append([]string{"00000009999999999000"}, p.Organisations...)
			for _, oin := range orgs {
				in := Input{Actor: Actor{Sub: "client", Organisation: oin}, Action: action, Purpose: purpose,
					Subject: &Subject{Geheimhouding: true}}
				if d, ok := decide(in); ok && d.Allow {
					fail(in, "a resident with geheimhoudingPersoonsgegevens would be disclosed to an organisation")
				}
			}
		}
	}
	return errors.Join(errs...)
}
