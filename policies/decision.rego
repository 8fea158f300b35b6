# Purpose binding (doelbinding) for the klantbeeld gateway.
#
# The gateway asks data.klantbeeld.decision once per request with
#   input.actor    {sub, department, roles, organisation}  from the JWT
#   input.action   "resident-view" | "subject-access"
#   input.purpose  the declared purpose
#   input.context  {type, id} naming the contact or case that justifies it (optional);
#                  type "break-glass" when the caller gave a reason instead of a context
#   input.sources  the sources the caller asked for (optional: all)
#   input.subject  {geheimhoudingPersoonsgegevens, opschortingBijhouding} once the BRP told them (optional)
# and gets one structured decision: allowed or not with reasons and stable
# reason codes, the processing activity, and per permitted source what may
# leave it (the source's entry in data.json, with existence_notes and
# existence_codes for its existence-only domains; a list it leaves out is
# empty).
#
# A decision is about claims, never about a person: the engine caches it
# per department, roles, organisation, purpose, action, sources, context
# type and subject facts, and passes input.actor.sub and input.context.id
# only as "redacted" (absent or empty when not given). Rules may test that
# they are given, not what they are.
#
# Reason codes are a contract: the gateway turns each into a problem type
# URI and the audit log records them. Add codes; do not rename them.
#
# Routine changes (a field, a domain, a new purpose) are made in data.json.
# The rules below hold whatever data.json says.
#
# Every request evaluates this file once when its claim set is new, so the
# rules read input and data directly with built-ins (object.get, in) rather
# than through helper rules and functions, which cost far more per call in
# OPA's evaluator; `make bench` shows the effect.
package klantbeeld

import rego.v1

department := object.get(input, ["actor", "department"], "")

is_organisation if {
	is_string(input.actor.organisation)
	input.actor.organisation != ""
}

action := object.get(input, "action", "resident-view")

purpose := data.purposes[input.purpose]

# Burgerzaken may never see Sociale Zaken, not even that it exists: not a
# burgerzaken employee, not through any purpose burgerzaken holds. Part of
# the code, not of data.json, so that no data change can undo it.
never_domains contains "SOCZA" if input.actor.department == "burgerzaken"

never_domains contains "SOCZA" if "burgerzaken" in purpose.departments

# Denials. Any one of them denies the request. Each has a stable code and
# a reason for people. A claim that is absent, empty or not a string is
# missing.

deny contains {"code": "missing_claim", "reason": "token has no subject (sub)"} if {
	object.get(input, ["actor", "sub"], "") == ""
}

deny contains {"code": "missing_claim", "reason": "token has no subject (sub)"} if {
	not is_string(object.get(input, ["actor", "sub"], ""))
}

deny contains {"code": "no_data_role", "reason": sprintf("role %q may not receive resident data", [r])} if {
	some r in object.get(input, ["actor", "roles"], [])
	r in data.no_data_roles
}

deny contains {"code": "missing_claim", "reason": sprintf("employee token lacks the role %q", [data.employee_role])} if {
	not data.employee_role in object.get(input, ["actor", "roles"], [])
	not is_organisation
}

deny contains {"code": "missing_claim", "reason": "employee token has no department"} if {
	department == ""
	not is_organisation
}

deny contains {"code": "missing_claim", "reason": "employee token has no department"} if {
	not is_string(department)
	not is_organisation
}

deny contains {"code": "purpose_missing", "reason": "no purpose given"} if {
	object.get(input, "purpose", "") == ""
}

deny contains {"code": "purpose_missing", "reason": "no purpose given"} if {
	not is_string(object.get(input, "purpose", ""))
}

deny contains {"code": "purpose_unknown", "reason": sprintf("unknown purpose %q", [input.purpose])} if {
	not purpose
	is_string(input.purpose)
	input.purpose != ""
}

deny contains {"code": "purpose_not_granted", "reason": sprintf("purpose %q is not granted to department %q", [input.purpose, department])} if {
	not department in purpose.departments
	not "*" in purpose.departments
	purpose
	department != ""
	not is_organisation
}

deny contains {"code": "purpose_not_granted", "reason": sprintf("purpose %q is not granted to organisation %q", [input.purpose, input.actor.organisation])} if {
	is_organisation
	purpose
	not input.actor.organisation in object.get(purpose, "organisations", [])
}

deny contains {"code": "action_not_granted", "reason": sprintf("purpose %q is not for %s", [input.purpose, action])} if {
	not action in purpose.actions
	purpose
}

# A purpose's requires_context lists the context types that justify a
# look-up (the gateway verifies the one given before any data leaves);
# break_glass whether a stated reason may stand in for it, flagged for
# review. Never for an organisation: break-glass is an employee's call.
deny contains {"code": "context_required", "reason": sprintf("purpose %q requires a context of type %s", [input.purpose, concat(" or ", purpose.requires_context)])} if {
	count(object.get(purpose, "requires_context", [])) > 0
	not context_given
	not break_glass
}

deny contains {"code": "break_glass_not_allowed", "reason": sprintf("purpose %q does not allow break-glass", [input.purpose])} if {
	break_glass
	purpose
	object.get(purpose, "break_glass", false) != true
}

deny contains {"code": "break_glass_not_allowed", "reason": "break-glass is never allowed to organisations"} if {
	break_glass
	is_organisation
}

break_glass if input.context.type == "break-glass"

deny contains {"code": "geheimhouding_organisation", "reason": "the resident has geheimhoudingPersoonsgegevens: nothing is disclosed to organisations"} if {
	input.subject.geheimhoudingPersoonsgegevens == true
	is_organisation
}

context_given if {
	input.context.type in purpose.requires_context
	is_string(input.context.id)
	input.context.id != ""
}

allow if count(deny) == 0

# What may leave each permitted source the caller asked for.
granted[s] := source_rule(spec) if {
	some s, spec in purpose.sources
	s in data.sources
	s in object.get(input, "sources", data.sources)
}

# A source's entry in data.json as it is, unless it has existence-only
# domains (which get their notes and codes) or never_domains applies
# (which removes those domains from both the disclosed and the
# existence-only ones).
source_rule(spec) := spec if {
	count(never_domains) == 0
	not spec.existence_only
} else := object.union(spec, {
	"existence_notes": {d: contact_note(d) | some d in spec.existence_only},
	"existence_codes": {d: "existence_only" | some d in spec.existence_only},
}) if {
	count(never_domains) == 0
} else := object.union(spec, {
	"domains": [d | some d in object.get(spec, "domains", []); not d in never_domains],
	"existence_only": existence,
	"existence_notes": {d: contact_note(d) | some d in existence},
	"existence_codes": {d: "existence_only" | some d in existence},
}) if {
	existence := [d | some d in object.get(spec, "existence_only", []); not d in never_domains]
}

contact_note(d) := object.get(data.domains, [d, "contact_note"], sprintf("contact %s", [d]))

notes contains "the resident is deceased (opschortingBijhouding O)" if {
	input.subject.opschortingBijhouding == "O"
}

decision := {
	"allow": true,
	"reasons": [sprintf("purpose %q is granted to %s", [input.purpose, grantee])],
	"codes": [],
	"notes": sort(notes),
	"processing_activity": purpose.processing_activity,
	"sources": granted,
} if {
	allow
}

decision := {
	"allow": false,
	"reasons": sort([d.reason | some d in deny]),
	"codes": sort({d.code | some d in deny}),
	"notes": [],
	"processing_activity": refusal_activity,
	"sources": {},
} if {
	not allow
}

grantee := sprintf("organisation %q", [input.actor.organisation]) if {
	is_organisation
} else := sprintf("department %q", [department])

# A refused request is still a processing of personal data: it is logged
# under the purpose's activity when the purpose exists, else under the
# gateway's own access-control activity.
refusal_activity := purpose.processing_activity if {
	purpose
} else := data.refusal_processing_activity
