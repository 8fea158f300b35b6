package policies

import "regexp"

// Reason codes the embedded bundle gives. They are a contract: the gateway
// turns each into a problem type URI (ReasonTypeURI) and the audit log keeps
// them, so a code is never renamed. A bundle may add codes of its own; any
// code for which ValidCode holds may be used.
const (
	// CodeMissingClaim: the token lacks sub, department or the employee role.
	CodeMissingClaim = "missing_claim"
	// CodeNoDataRole: a role that may never receive resident data (auditor,
	// privacy officer).
	CodeNoDataRole = "no_data_role"
	// CodePurposeMissing: no purpose was declared.
	CodePurposeMissing = "purpose_missing"
	// CodePurposeUnknown: the purpose is not in the policy data.
	CodePurposeUnknown = "purpose_unknown"
	// CodePurposeNotGranted: the purpose is not granted to the actor's
	// department or organisation.
	CodePurposeNotGranted = "purpose_not_granted"
	// CodeActionNotGranted: the purpose exists but not for this action.
	CodeActionNotGranted = "action_not_granted"
	// CodeContextRequired: the purpose needs a context (contact, zaak,
	// interne taak) the request did not name.
	CodeContextRequired = "context_required"
	// CodeBreakGlassNotAllowed: break-glass was asked for a purpose that
	// does not allow it, or by an organisation.
	CodeBreakGlassNotAllowed = "break_glass_not_allowed"
	// CodeGeheimhoudingOrganisation: the resident has
	// geheimhoudingPersoonsgegevens and the caller is an organisation.
	CodeGeheimhoudingOrganisation = "geheimhouding_organisation"
	// CodeExistenceOnly: records of a domain are counted in "withheld",
	// never shown.
	CodeExistenceOnly = "existence_only"
	// Codes of a context the gateway could not verify before any data
	// left. Each says which kind failed and nothing about what exists: a
	// session, zaak or taak that does not exist gets the same code as one
	// that is not the caller's.
	//
	// CodeContactSessionInvalid: no open contact session of the caller has
	// that id (unknown, someone else's, closed or timed out).
	CodeContactSessionInvalid = "contact_session_invalid"
	// CodeZaakNotBetrokkene: no zaak with that id has the resident as a
	// betrokkene.
	CodeZaakNotBetrokkene = "zaak_not_betrokkene"
	// CodeInterneTaakNotAssigned: no interne taak with that id is assigned
	// to the caller or their department.
	CodeInterneTaakNotAssigned = "internetaak_not_assigned"
	// CodeContextUnverifiable: the gateway has no way to verify a context
	// of that type.
	CodeContextUnverifiable = "context_unverifiable"
	// CodeDenied is given by the engine to a denial whose bundle named no
	// code, so that every denial has one.
	CodeDenied = "denied"
)

// ReasonTypeBase is where the problem types of reason codes live.
const ReasonTypeBase = "https://klantbeeld.gemeente.example/problems/"

// codePattern is what a reason code looks like: safe in a URI path and a
// log line.
var codePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ValidCode reports whether code has the form of a reason code: lower-case
// letters, digits and underscores, starting with a letter, at most 64 long.
func ValidCode(code string) bool { return codePattern.MatchString(code) }

// ReasonTypeURI is the problem+json "type" of a reason code. A code that
// is not ValidCode gets the type of CodeDenied, so no bundle can put
// arbitrary text into a URI.
func ReasonTypeURI(code string) string {
	if !ValidCode(code) {
		code = CodeDenied
	}
	return ReasonTypeBase + code
}

// reasonTitles are short English titles for the codes of the embedded
// bundle, for problem+json "title".
var reasonTitles = map[string]string{
	CodeMissingClaim:              "The token lacks a required claim",
	CodeNoDataRole:                "This role never receives resident data",
	CodePurposeMissing:            "No purpose was declared",
	CodePurposeUnknown:            "Unknown purpose",
	CodePurposeNotGranted:         "Purpose not granted",
	CodeActionNotGranted:          "Purpose not granted for this action",
	CodeContextRequired:           "The purpose requires a context",
	CodeGeheimhoudingOrganisation: "Not disclosed to organisations (geheimhouding)",
	CodeBreakGlassNotAllowed:      "Break-glass is not allowed here",
	CodeContactSessionInvalid:     "No open contact session of yours",
	CodeZaakNotBetrokkene:         "The resident is not a betrokkene of this zaak",
	CodeInterneTaakNotAssigned:    "The interne taak is not assigned to you or your department",
	CodeContextUnverifiable:       "The context cannot be verified",
	CodeExistenceOnly:             "Existence only",
	CodeDenied:                    "Not permitted",
}

// ReasonTitle is a short title for a reason code; "Not permitted" for a
// code this package does not know (a bundle's own).
func ReasonTitle(code string) string {
	if t, ok := reasonTitles[code]; ok {
		return t
	}
	return reasonTitles[CodeDenied]
}
