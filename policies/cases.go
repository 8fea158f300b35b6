package policies

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Roles with a meaning of their own to the guard. They are fixed here, not
// read from data.json, so that no data change can make an auditor an employee.
const (
	RoleEmployee       = "medewerker"
	RoleAuditor        = "auditor"
	RolePrivacyOfficer = "privacy-officer"
)

// Subject facts a Case can carry.
const (
	FactsNone          = "none"
	FactsGeheimhouding = "geheimhouding"
	FactsOpschorting   = "opschorting O"
)

// Case is one combination of claims and resident facts that the guard and
// the dry-run diff ask a bundle about. An organisation case has no
// department or roles.
type Case struct {
	Department   string   `json:"department,omitempty"`
	Roles        []string `json:"roles"`
	Organisation string   `json:"organisation,omitempty"`
	Action       string   `json:"action"`
	Purpose      string   `json:"purpose"`
	// Subject is FactsNone, FactsGeheimhouding or FactsOpschorting.
	Subject string `json:"subject"`
	// Context is the type of the context the case names (with an id the
	// gateway would have verified): the first a bundle's purpose
	// requires, so that what the purpose grants is asked about; "" for
	// none.
	Context string `json:"context,omitempty"`
}

// Input is the decision input of the case, for an actor with a subject.
func (k Case) Input() Input {
	in := Input{
		Actor:   Actor{Sub: "case", Department: k.Department, Roles: k.Roles, Organisation: k.Organisation},
		Action:  k.Action,
		Purpose: k.Purpose,
	}
	if k.Context != "" {
		in.Context = &Context{Type: k.Context, ID: "case"}
	}
	switch k.Subject {
	case FactsGeheimhouding:
		in.Subject = &Subject{Geheimhouding: true}
	case FactsOpschorting:
		in.Subject = &Subject{Opschorting: "O"}
	}
	return in
}

// String says who asks what, for people: "kcc [medewerker] klantcontact
// resident-view, subject: none".
func (k Case) String() string {
	return fmt.Sprintf("%s %s %s, subject: %s", k.Who(), k.Purpose, k.Action, k.Subject)
}

// Who is the case's actor for people: "kcc [medewerker]" or
// "organisation 00000001234567890000".
func (k Case) Who() string {
	if k.Organisation != "" {
		return "organisation " + k.Organisation
	}
	who := k.Department
	if who == "" {
		who = "(no department)"
	}
	return who + " [" + strings.Join(k.Roles, ",") + "]"
}

// policyData is what the guard and the dry run read of a data.json.
type policyData struct {
	Purposes map[string]purposeData `json:"purposes"`
}

type purposeData struct {
	Departments   []string `json:"departments"`
	Organisations []string `json:"organisations"`
	Actions       []string `json:"actions"`
	// RequiresContext are the context types that justify a look-up;
	// BreakGlass whether a stated reason may stand in for one.
	RequiresContext []string `json:"requires_context"`
	BreakGlass      bool     `json:"break_glass"`
	Sources         map[string]struct {
		Domains       []string `json:"domains"`
		ExistenceOnly []string `json:"existence_only"`
	} `json:"sources"`
}

func readPolicyData(b Bundle) (policyData, error) {
	var doc policyData
	if err := json.Unmarshal(b.Files[DataFile], &doc); err != nil {
		return policyData{}, fmt.Errorf("%w: %s: %v", ErrBundle, DataFile, err)
	}
	return doc, nil
}

// grantsDepartment reports whether the purpose is granted to dept, by name
// or to every department ("*").
func (p purposeData) grantsDepartment(dept string) bool {
	return dept != "" && (slices.Contains(p.Departments, dept) || slices.Contains(p.Departments, "*"))
}

// Names the cases use beside those of the bundles: departments and an
// organisation no bundle lists, and a purpose none defines.
const (
	unlistedDepartment   = "onbekende-afdeling"
	unlistedOrganisation = "00000009999999999000"
	unlistedPurpose      = "ongeregistreerd-doel"
)

// roleSets are the role claims the cases try: each role alone, the
// no-data roles beside the employee role, and none.
func roleSets() [][]string {
	return [][]string{
		{RoleEmployee}, {RoleAuditor}, {RolePrivacyOfficer},
		{RoleAuditor, RoleEmployee}, {RoleEmployee, RolePrivacyOfficer}, {},
	}
}

func subjectFacts() []string { return []string{FactsNone, FactsGeheimhouding, FactsOpschorting} }

// cases is every combination of department × roles × purpose × action ×
// subject facts, and of organisation × purpose × action × subject facts,
// over the names in docs and some that no bundle lists.
func cases(docs ...policyData) []Case {
	depts := []string{"burgerzaken", "sociale-zaken", "kcc", "belastingen", unlistedDepartment}
	orgs := []string{unlistedOrganisation}
	purposes := []string{unlistedPurpose}
	actions := []string{ActionResidentView, ActionSubjectAccess}
	contexts := map[string]string{}
	for _, doc := range docs {
		for name, p := range doc.Purposes {
			purposes = append(purposes, name)
			if _, ok := contexts[name]; !ok && len(p.RequiresContext) > 0 {
				contexts[name] = p.RequiresContext[0]
			}
			for _, d := range p.Departments {
				if d != "*" && d != "" {
					depts = append(depts, d)
				}
			}
			for _, o := range p.Organisations {
				if o != "" {
					orgs = append(orgs, o)
				}
			}
			for _, a := range p.Actions {
				if a != "" {
					actions = append(actions, a)
				}
			}
		}
	}
	depts, orgs, purposes, actions = sortedSet(depts), sortedSet(orgs), sortedSet(purposes), sortedSet(actions)

	var out []Case
	for _, purpose := range purposes {
		for _, action := range actions {
			for _, facts := range subjectFacts() {
				for _, dept := range depts {
					for _, roles := range roleSets() {
						out = append(out, Case{Department: dept, Roles: roles, Action: action, Purpose: purpose, Subject: facts, Context: contexts[purpose]})
					}
				}
				for _, org := range orgs {
					out = append(out, Case{Organisation: org, Roles: []string{}, Action: action, Purpose: purpose, Subject: facts, Context: contexts[purpose]})
				}
			}
		}
	}
	return out
}
