package policies

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Aspects of a grant a Diff reports.
const (
	AspectAllow                = "allow"                 // the request is allowed at all
	AspectSource               = "source"                // the source is called
	AspectField                = "field"                 // a field may leave it
	AspectDomain               = "domain"                // records of a domain may
	AspectExistenceOnly        = "existence_only"        // a domain's records are counted
	AspectRecord               = "record"                // a kind of record may (Salesforce)
	AspectMaxVertrouwelijkheid = "max_vertrouwelijkheid" // records up to a level may
	AspectUndomained           = "undomained"            // records of no domain may
	AspectVertrouwelijk        = "vertrouwelijk"         // records marked vertrouwelijk may
	AspectMaxAgeDays           = "max_age_days"          // how far back (0: no limit)
	AspectProcessingActivity   = "processing_activity"   // the activity the access is logged under
)

// Grant is one thing a case gains or loses.
type Grant struct {
	// Source is "" for AspectAllow and AspectProcessingActivity.
	Source string `json:"source,omitempty"`
	Aspect string `json:"aspect"`
	// Value is the field, domain, record kind or level; for a level,
	// age or flag the proposed value, with the active one in From.
	Value string `json:"value,omitempty"`
	From  string `json:"from,omitempty"`
}

// String is the grant for people: "brp field geboorte",
// "zaken max_vertrouwelijkheid intern → geheim".
func (g Grant) String() string {
	s := g.Aspect
	if g.Source != "" {
		s = g.Source + " " + s
	}
	if g.From != "" {
		return s + " " + g.From + " → " + g.Value
	}
	if g.Value != "" {
		s += " " + g.Value
	}
	return s
}

// Change is how one case is decided differently.
type Change struct {
	Case Case `json:"case"`
	// WasAllowed and Allowed are the active and the proposed bundle's answer.
	WasAllowed bool    `json:"was_allowed"`
	Allowed    bool    `json:"allowed"`
	Gained     []Grant `json:"gained,omitempty"`
	Lost       []Grant `json:"lost,omitempty"`
	// Changed is neither more nor less data: the processing activity, or
	// a level one of the bundles names that is not on the scale.
	Changed []Grant `json:"changed,omitempty"`
}

// Difference is what a proposed bundle would decide differently from the
// active one, over every case (see Case).
type Difference struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Cases   int      `json:"cases"`
	Changes []Change `json:"changes"`
}

// Diff compiles both bundles (no checks) and compares their decisions for
// every department × roles × purpose × action × subject facts and every
// organisation × purpose × action × subject facts, over the names in both
// bundles' data and some neither lists. Disclosure is compared source by
// source: fields, domains, existence-only domains and record kinds as
// sets; levels, flags and ages by which is more permissive. An allowed
// case that becomes denied loses "allow" and its sources, not each field.
func Diff(ctx context.Context, active, proposed Bundle) (Difference, error) {
	from, err := Compile(ctx, active)
	if err != nil {
		return Difference{}, fmt.Errorf("active bundle: %w", err)
	}
	to, err := Compile(ctx, proposed)
	if err != nil {
		return Difference{}, fmt.Errorf("proposed bundle: %w", err)
	}
	return DiffVersions(ctx, from, to)
}

// DiffVersions is Diff of two compiled versions, e.g. the engine's active
// Snapshot and a proposed bundle's.
func DiffVersions(ctx context.Context, from, to Snapshot) (Difference, error) {
	docA, err := readPolicyData(from.Bundle())
	if err != nil {
		return Difference{}, err
	}
	docB, err := readPolicyData(to.Bundle())
	if err != nil {
		return Difference{}, err
	}
	out := Difference{From: from.Version(), To: to.Version(), Changes: []Change{}}
	for _, k := range cases(docA, docB) {
		if err := ctx.Err(); err != nil {
			return Difference{}, err
		}
		n := normalize(k.Input())
		a, err := from.c.decideFresh(ctx, n)
		if err != nil {
			return Difference{}, fmt.Errorf("active bundle, %s: %w", k, err)
		}
		b, err := to.c.decideFresh(ctx, n)
		if err != nil {
			return Difference{}, fmt.Errorf("proposed bundle, %s: %w", k, err)
		}
		out.Cases++
		if c, ok := compare(k, a, b); ok {
			out.Changes = append(out.Changes, c)
		}
	}
	return out, nil
}

// compare says what b grants that a does not, and the other way round.
func compare(k Case, a, b Decision) (Change, bool) {
	c := Change{Case: k, WasAllowed: a.Allow, Allowed: b.Allow}
	gain := func(g Grant) { c.Gained = append(c.Gained, g) }
	lose := func(g Grant) { c.Lost = append(c.Lost, g) }
	if a.Allow != b.Allow {
		g := Grant{Aspect: AspectAllow}
		if b.Allow {
			gain(g)
		} else {
			lose(g)
		}
	}
	if a.ProcessingActivity != b.ProcessingActivity {
		c.Changed = append(c.Changed, Grant{Aspect: AspectProcessingActivity, From: a.ProcessingActivity, Value: b.ProcessingActivity})
	}
	srcA, srcB := a.Sources, b.Sources
	for _, s := range sortedKeys(srcA) {
		if _, ok := srcB[s]; !ok {
			lose(Grant{Source: s, Aspect: AspectSource})
		}
	}
	for _, s := range sortedKeys(srcB) {
		ra, ok := srcA[s]
		if !ok {
			gain(Grant{Source: s, Aspect: AspectSource})
			continue
		}
		rb := srcB[s]
		sets := []struct {
			aspect string
			a, b   []string
		}{
			{AspectField, ra.Fields, rb.Fields},
			{AspectDomain, ra.Domains, rb.Domains},
			{AspectExistenceOnly, ra.ExistenceOnly, rb.ExistenceOnly},
			{AspectRecord, ra.Records, rb.Records},
		}
		for _, set := range sets {
			for _, v := range sortedSet(set.b) {
				if !slices.Contains(set.a, v) {
					gain(Grant{Source: s, Aspect: set.aspect, Value: v})
				}
			}
			for _, v := range sortedSet(set.a) {
				if !slices.Contains(set.b, v) {
					lose(Grant{Source: s, Aspect: set.aspect, Value: v})
				}
			}
		}
		if ra.MaxVertrouwelijkheid != rb.MaxVertrouwelijkheid {
			g := Grant{Source: s, Aspect: AspectMaxVertrouwelijkheid, From: levelName(ra.MaxVertrouwelijkheid), Value: levelName(rb.MaxVertrouwelijkheid)}
			la, lb := levelRank(ra.MaxVertrouwelijkheid), levelRank(rb.MaxVertrouwelijkheid)
			switch {
			case la < 0 || lb < 0:
				c.Changed = append(c.Changed, g)
			case lb > la:
				gain(g)
			default:
				lose(g)
			}
		}
		for _, flag := range []struct {
			aspect string
			a, b   bool
		}{{AspectUndomained, ra.Undomained, rb.Undomained}, {AspectVertrouwelijk, ra.Vertrouwelijk, rb.Vertrouwelijk}} {
			if flag.a != flag.b {
				g := Grant{Source: s, Aspect: flag.aspect, From: strconv.FormatBool(flag.a), Value: strconv.FormatBool(flag.b)}
				if flag.b {
					gain(g)
				} else {
					lose(g)
				}
			}
		}
		if ra.MaxAgeDays != rb.MaxAgeDays {
			g := Grant{Source: s, Aspect: AspectMaxAgeDays, From: ageName(ra.MaxAgeDays), Value: ageName(rb.MaxAgeDays)}
			if ra.MaxAgeDays > 0 && (rb.MaxAgeDays == 0 || rb.MaxAgeDays > ra.MaxAgeDays) {
				gain(g)
			} else {
				lose(g)
			}
		}
	}
	return c, len(c.Gained)+len(c.Lost)+len(c.Changed) > 0
}

// levels is the scale of vertrouwelijkheidaanduiding, least restricted first.
func levels() []string {
	return []string{"openbaar", "beperkt_openbaar", "intern", "zaakvertrouwelijk", "vertrouwelijk", "confidentieel", "geheim", "zeer_geheim"}
}

// levelRank places a level on the scale; none is openbaar (what the view
// asks for then), and -1 is off the scale.
func levelRank(l string) int {
	if l == "" {
		return 0
	}
	return slices.Index(levels(), l)
}

func levelName(l string) string {
	if l == "" {
		return "(none: openbaar)"
	}
	return l
}

func ageName(days int) string {
	if days == 0 {
		return "(no limit)"
	}
	return strconv.Itoa(days)
}

// Table is the diff for people: one line per gain, loss or change, with
// the case it applies to.
func (d Difference) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Policy difference %s → %s: %d of %d cases decided differently.\n", short(d.From), short(d.To), len(d.Changes), d.Cases)
	if len(d.Changes) == 0 {
		return b.String()
	}
	b.WriteByte('\n')
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHO\tPURPOSE\tACTION\tSUBJECT\tCHANGE")
	for _, c := range d.Changes {
		prefix := c.Case.Who() + "\t" + c.Case.Purpose + "\t" + c.Case.Action + "\t" + c.Case.Subject + "\t"
		for _, g := range c.Gained {
			fmt.Fprintln(tw, prefix+"+ gains "+g.String())
		}
		for _, g := range c.Lost {
			fmt.Fprintln(tw, prefix+"- loses "+g.String())
		}
		for _, g := range c.Changed {
			fmt.Fprintln(tw, prefix+"~ changes "+g.String())
		}
	}
	_ = tw.Flush()
	return b.String()
}

// short abbreviates a version for people: "sha256:" and 12 hex digits.
func short(version string) string {
	if len(version) > len("sha256:")+12 {
		return version[:len("sha256:")+12]
	}
	return version
}
