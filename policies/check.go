package policies

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test.
type TestResult struct {
	Package  string        `json:"package"`
	Name     string        `json:"name"`
	Pass     bool          `json:"pass"`
	Skip     bool          `json:"skip,omitempty"`
	Err      string        `json:"error,omitempty"` // compile or runtime error, if any
	Location string        `json:"location"`        // file:line of the test
	Duration time.Duration `json:"duration_ns"`
}

// FullName is the test's package and rule name, as `opa test` prints it.
func (r TestResult) FullName() string { return "data." + r.Package + "." + r.Name }

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

// TestFailure: the bundle's own Rego tests fail, or it has none.
type TestFailure struct {
	// Names are the failing tests, "data.package.test_name".
	Names []string
}

// Error names the failing tests.
func (e *TestFailure) Error() string {
	if len(e.Names) == 0 {
		return "the policy bundle has no Rego tests"
	}
	return "policy tests failed: " + strings.Join(e.Names, ", ")
}

// ErrGuard is wrapped by every *InvariantError.
var ErrGuard = errors.New("policy bundle breaks an invariant")

// The invariants no bundle may break. Their names are stable: the gateway
// shows them and the audit log keeps them.
const (
	// InvariantBurgerzakenNoSOCZA: no purpose of department burgerzaken (nor
	// any decision for a burgerzaken employee) receives a SOCZA record or
	// field from any source, not even its existence; data.json may not even
	// grant it.
	InvariantBurgerzakenNoSOCZA = "burgerzaken-never-socza"
	// InvariantNoDataRoles: auditors and privacy officers never receive
	// resident data, whatever other roles they hold.
	InvariantNoDataRoles = "no-data-for-auditors-and-privacy-officers"
	// InvariantUnknownPurpose: a purpose data.json does not define, or none,
	// is denied.
	InvariantUnknownPurpose = "unknown-purpose-denied"
	// InvariantPurposeNotGranted: a purpose not granted to the actor's
	// department (or organisation) is denied.
	InvariantPurposeNotGranted = "purpose-not-granted-denied"
	// InvariantMissingClaim: a token without sub, or an employee token
	// without department or roles, is denied.
	InvariantMissingClaim = "missing-claim-denied"
	// InvariantGeheimhouding: a resident with geheimhoudingPersoonsgegevens
	// is never disclosed to an organisation caller.
	InvariantGeheimhouding = "geheimhouding-never-to-organisations"
	// InvariantProcessingActivity: every decision names its processing activity.
	InvariantProcessingActivity = "decision-names-processing-activity"
	// InvariantReasonCodes: every denial carries a reason code, and every
	// code is ValidCode.
	InvariantReasonCodes = "denial-has-reason-code"
	// InvariantBreakGlassOrganisations: break-glass (a reason instead of
	// a context) is never let through for an organisation.
	InvariantBreakGlassOrganisations = "break-glass-never-for-organisations"
	// InvariantVerifiableContext: a purpose requires only context types
	// the gateway can verify (VerifiableContexts): one it cannot would
	// let any id through.
	InvariantVerifiableContext = "required-context-verifiable"
	// InvariantDecides: every input gets exactly one well-formed decision;
	// a bundle that errs for some would refuse those requests with a 500.
	InvariantDecides = "well-formed-decision"
)

// Invariants are the names of the invariants Check holds every bundle to,
// in the order it reports them.
func Invariants() []string {
	return []string{
		InvariantDecides, InvariantProcessingActivity, InvariantReasonCodes,
		InvariantBurgerzakenNoSOCZA, InvariantNoDataRoles, InvariantUnknownPurpose,
		InvariantPurposeNotGranted, InvariantMissingClaim, InvariantGeheimhouding,
		InvariantBreakGlassOrganisations, InvariantVerifiableContext,
	}
}

// InvariantError: the bundle breaks one invariant.
type InvariantError struct {
	// Invariant is one of the Invariant… names.
	Invariant string `json:"invariant"`
	// Detail is the first case that breaks it.
	Detail string `json:"detail"`
	// Cases is how many cases break it.
	Cases int `json:"cases"`
}

// Error names the invariant and the first case that breaks it.
func (e *InvariantError) Error() string {
	s := fmt.Sprintf("policy bundle breaks invariant %s: %s", e.Invariant, e.Detail)
	if e.Cases > 1 {
		s += fmt.Sprintf(" (and %d more cases)", e.Cases-1)
	}
	return s
}

// Unwrap makes every InvariantError an ErrGuard.
func (e *InvariantError) Unwrap() error { return ErrGuard }

// Report is what Check found.
type Report struct {
	// Version is the checked bundle's.
	Version string `json:"version"`
	// Previous is the version Activate replaced, or would have.
	Previous string       `json:"previous,omitempty"`
	Tests    []TestResult `json:"tests"`
	// Invariants are those checked; Violations those broken.
	Invariants []string          `json:"invariants"`
	Violations []*InvariantError `json:"violations,omitempty"`
	// Cases is how many decisions the guard asked for.
	Cases int `json:"cases"`
}

// Check is what a bundle must pass before it is activated: it compiles
// (else ErrBundle), its own _test.rego tests pass (else *TestFailure with
// their names) and it keeps every invariant (else an *InvariantError per
// broken invariant). Test failures and violations are joined into one
// error, so errors.AsType finds each; the Report has the details.
func Check(ctx context.Context, b Bundle) (Report, error) {
	_, rep, err := check(ctx, b)
	return rep, err
}

// CheckCompiled is Check that also returns the compiled version whenever
// the bundle compiles, even when its tests fail or it breaks an invariant:
// a dry run shows what such a bundle would decide and why it would be
// refused, and an activation does not compile the bundle twice. The
// Snapshot is the zero value only when err is not a *TestFailure or an
// *InvariantError (the bundle does not compile, or the check could not
// finish).
func CheckCompiled(ctx context.Context, b Bundle) (Snapshot, Report, error) {
	c, rep, err := check(ctx, b)
	if c == nil {
		return Snapshot{}, rep, err
	}
	return Snapshot{c}, rep, err
}

// check is Check; its *compiled is nil unless the bundle compiled and all
// its tests and guard cases ran.
func check(ctx context.Context, b Bundle) (*compiled, Report, error) {
	rep := Report{Version: b.Version()}
	c, err := compile(ctx, b)
	if err != nil {
		return nil, rep, err
	}
	doc, err := readPolicyData(b)
	if err != nil {
		return nil, rep, err
	}
	if rep.Tests, err = RunTests(ctx, b); err != nil {
		return nil, rep, err
	}
	var errs []error
	var failed []string
	for _, t := range rep.Tests {
		if !t.Pass && !t.Skip {
			failed = append(failed, t.FullName())
		}
	}
	if len(failed) > 0 || len(rep.Tests) == 0 {
		errs = append(errs, &TestFailure{Names: failed})
	}
	rep.Invariants = Invariants()
	rep.Cases, rep.Violations, err = guard(ctx, c, doc)
	if err != nil {
		return nil, rep, err
	}
	for _, v := range rep.Violations {
		errs = append(errs, v)
	}
	// The compiled version goes back with its test failures and
	// violations: a dry run shows what it would decide all the same.
	return c, rep, errors.Join(errs...)
}

// Guard checks only the invariants of Check, not the bundle's tests. It
// returns the broken ones joined, each an *InvariantError.
func Guard(ctx context.Context, b Bundle) error {
	c, err := compile(ctx, b)
	if err != nil {
		return err
	}
	doc, err := readPolicyData(b)
	if err != nil {
		return err
	}
	_, violations, err := guard(ctx, c, doc)
	if err != nil {
		return err
	}
	errs := make([]error, len(violations))
	for i, v := range violations {
		errs[i] = v
	}
	return errors.Join(errs...)
}

// guard asks the bundle about every case (see cases) and about tokens with
// a claim missing, and checks each decision against the invariants in Go,
// whatever the bundle's Rego or data say. It also reads data.json for
// grants that break an invariant even where the Rego would filter them
// out. An error means it could not finish (the context ended).
func guard(ctx context.Context, c *compiled, doc policyData) (int, []*InvariantError, error) {
	found := map[string]*InvariantError{}
	add := func(invariant, format string, args ...any) {
		if e := found[invariant]; e != nil {
			e.Cases++
			return
		}
		found[invariant] = &InvariantError{Invariant: invariant, Detail: fmt.Sprintf(format, args...), Cases: 1}
	}

	// What data.json grants, before any Rego filters it.
	for _, name := range sortedKeys(doc.Purposes) {
		p := doc.Purposes[name]
		if !p.grantsDepartment("burgerzaken") {
			continue
		}
		for _, src := range sortedKeys(p.Sources) {
			s := p.Sources[src]
			if slices.Contains(s.Domains, "SOCZA") {
				add(InvariantBurgerzakenNoSOCZA, "data.json grants purpose %q, which burgerzaken holds, SOCZA in %s.domains", name, src)
			}
			if slices.Contains(s.ExistenceOnly, "SOCZA") {
				add(InvariantBurgerzakenNoSOCZA, "data.json grants purpose %q, which burgerzaken holds, SOCZA in %s.existence_only", name, src)
			}
		}
	}

	for _, name := range sortedKeys(doc.Purposes) {
		for _, t := range doc.Purposes[name].RequiresContext {
			if !slices.Contains(VerifiableContexts, t) {
				add(InvariantVerifiableContext, "data.json: purpose %q requires a context of type %q, which the gateway cannot verify", name, t)
			}
		}
	}

	n := 0
	ask := func(k Case, in Input) (Decision, bool) {
		n++
		d, err := c.evaluate(ctx, normalize(in))
		if err != nil {
			add(InvariantDecides, "%s: %v", k, err)
			return Decision{}, false
		}
		if d.ProcessingActivity == "" {
			add(InvariantProcessingActivity, "%s: the decision names no processing activity", k)
		}
		if !d.Allow && len(d.Codes) == 0 {
			add(InvariantReasonCodes, "%s: a denial without a reason code", k)
		}
		for _, code := range d.Codes {
			if !ValidCode(code) {
				add(InvariantReasonCodes, "%s: %q is not a valid reason code", k, code)
			}
		}
		return d, true
	}

	for _, k := range cases(doc) {
		if err := ctx.Err(); err != nil {
			return n, nil, err
		}
		d, ok := ask(k, k.Input())
		if !ok || !d.Allow {
			continue
		}
		p, known := doc.Purposes[k.Purpose]
		switch {
		case !known:
			add(InvariantUnknownPurpose, "%s: allowed, but data.json defines no purpose %q", k, k.Purpose)
		case k.Organisation != "" && !slices.Contains(p.Organisations, k.Organisation):
			add(InvariantPurposeNotGranted, "%s: allowed, but the purpose is not granted to the organisation", k)
		case k.Organisation == "" && !p.grantsDepartment(k.Department):
			add(InvariantPurposeNotGranted, "%s: allowed, but the purpose is not granted to the department", k)
		}
		if slices.Contains(k.Roles, RoleAuditor) || slices.Contains(k.Roles, RolePrivacyOfficer) {
			add(InvariantNoDataRoles, "%s: allowed: roles %v would receive resident data", k, k.Roles)
		}
		if k.Organisation == "" && len(k.Roles) == 0 {
			add(InvariantMissingClaim, "%s: allowed with no roles", k)
		}
		if k.Organisation != "" && k.Subject == FactsGeheimhouding {
			add(InvariantGeheimhouding, "%s: allowed: a resident with geheimhoudingPersoonsgegevens would be disclosed to an organisation", k)
		}
		if k.Department == "burgerzaken" || p.grantsDepartment("burgerzaken") {
			for _, src := range sortedKeys(d.Sources) {
				if r := d.Sources[src]; grantsDomain(r, "SOCZA") {
					add(InvariantBurgerzakenNoSOCZA, "%s: burgerzaken would receive SOCZA from %s", k, src)
				}
			}
		}
	}

	// Tokens with a claim missing, and organisation tokens that also carry
	// employee claims; and no purpose at all.
	for _, k := range cases(doc) {
		if err := ctx.Err(); err != nil {
			return n, nil, err
		}
		if k.Organisation != "" {
			glass := k.Input()
			glass.Context = &Context{Type: ContextBreakGlass, ID: "case"}
			if d, ok := ask(k, glass); ok && d.Allow {
				add(InvariantBreakGlassOrganisations, "%s: allowed with break-glass for an organisation", k)
			}
			in := k.Input()
			in.Actor.Sub = ""
			if d, ok := ask(k, in); ok && d.Allow {
				add(InvariantMissingClaim, "%s: allowed for an organisation token without sub", k)
			}
			if k.Subject == FactsGeheimhouding {
				in := k.Input()
				in.Actor.Department, in.Actor.Roles = "kcc", []string{RoleEmployee}
				if d, ok := ask(k, in); ok && d.Allow {
					add(InvariantGeheimhouding, "%s: allowed: a resident with geheimhoudingPersoonsgegevens would be disclosed to an organisation token with employee claims", k)
				}
			}
			continue
		}
		if !slices.Equal(k.Roles, []string{RoleEmployee}) {
			continue
		}
		noSub, noDept, noRoles := k.Input(), k.Input(), k.Input()
		noSub.Actor.Sub, noDept.Actor.Department, noRoles.Actor.Roles = "", "", nil
		for _, t := range []struct {
			in    Input
			claim string
		}{{noSub, "sub"}, {noDept, "department"}, {noRoles, "roles"}} {
			if d, ok := ask(k, t.in); ok && d.Allow {
				add(InvariantMissingClaim, "%s: allowed for a token without %s", k, t.claim)
			}
		}
		if k.Purpose == unlistedPurpose {
			in := k.Input()
			in.Purpose = ""
			if d, ok := ask(k, in); ok && d.Allow {
				add(InvariantUnknownPurpose, "%s: allowed with no purpose given", k)
			}
		}
	}

	var out []*InvariantError
	for _, name := range Invariants() {
		if e := found[name]; e != nil {
			out = append(out, e)
		}
	}
	return n, out, nil
}

// grantsDomain reports whether a rule lets anything of domain out, even
// its existence.
func grantsDomain(r SourceRule, domain string) bool {
	_, note := r.ExistenceNotes[domain]
	_, code := r.ExistenceCodes[domain]
	return slices.Contains(r.Domains, domain) || slices.Contains(r.ExistenceOnly, domain) || note || code
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
