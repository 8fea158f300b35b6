# Purpose binding (doelbinding) for the klantbeeld gateway.
#
# The gateway asks data.klantbeeld.decision once per request with
#   input.actor    {sub, department, roles, organisation}  from the JWT
#   input.action   "resident-view" | "subject-access"
#   input.purpose  the declared purpose
#   input.context  {type, id} naming the contact or case that justifies it (optional)
#   input.sources  the sources the caller asked for (optional: all)
#   input.subject  {geheimhoudingPersoonsgegevens, opschortingBijhouding} once the BRP told them (optional)
# and gets one structured decision: allowed or not with reasons, the
# processing activity, and per permitted source what may leave it.
#
# Routine changes (a field, a domain, a new purpose) are made in data.json.
# The rules below hold whatever data.json says.
package klantbeeld

import rego.v1

actor := object.get(input, "actor", {})

roles := {r | some r in object.get(actor, "roles", []); is_string(r)}

department := object.get(actor, "department", "")

organisation := object.get(actor, "organisation", "")

is_organisation if {
	is_string(organisation)
	organisation != ""
}

action := object.get(input, "action", "resident-view")

purpose := data.purposes[input.purpose]

# Departments whose purposes may never see a domain, not even its existence.
# Part of the code, not of data.json, so that no data change can undo it.
never := {"burgerzaken": {"SOCZA"}}

never_domains contains d if {
	some dept in purpose.departments
	some d in never[dept]
}

never_domains contains d if {
	some d in never[department]
}

# Denials. Any one of them denies the request.

deny contains "token has no subject (sub)" if {
	not non_empty(object.get(actor, "sub", ""))
}

deny contains sprintf("role %q may not receive resident data", [r]) if {
	some r in roles
	r in data.no_data_roles
}

deny contains sprintf("employee token lacks the role %q", [data.employee_role]) if {
	not is_organisation
	not data.employee_role in roles
}

deny contains "employee token has no department" if {
	not is_organisation
	not non_empty(department)
}

deny contains "no purpose given" if {
	not non_empty(object.get(input, "purpose", ""))
}

deny contains sprintf("unknown purpose %q", [input.purpose]) if {
	non_empty(input.purpose)
	not data.purposes[input.purpose]
}

deny contains sprintf("purpose %q is not granted to department %q", [input.purpose, department]) if {
	purpose
	not is_organisation
	non_empty(department)
	not department_granted
}

deny contains sprintf("purpose %q is not granted to organisation %q", [input.purpose, organisation]) if {
	purpose
	is_organisation
	not organisation in object.get(purpose, "organisations", [])
}

deny contains sprintf("purpose %q is not for %s", [input.purpose, action]) if {
	purpose
	not action in purpose.actions
}

deny contains sprintf("purpose %q requires a context of type %s", [input.purpose, concat(" or ", purpose.requires_context)]) if {
	count(object.get(purpose, "requires_context", [])) > 0
	not context_given
}

deny contains "the resident has geheimhoudingPersoonsgegevens: nothing is disclosed to organisations" if {
	is_organisation
	input.subject.geheimhoudingPersoonsgegevens == true
}

department_granted if department in purpose.departments

department_granted if "*" in purpose.departments

context_given if {
	input.context.type in purpose.requires_context
	non_empty(input.context.id)
}

non_empty(s) if {
	is_string(s)
	s != ""
}

allow if count(deny) == 0

requested(s) if not input.sources

requested(s) if s in input.sources

# What may leave each permitted source. Domains in never_domains are removed
# from both the disclosed and the existence-only domains.
granted[s] := rule if {
	some s, spec in purpose.sources
	s in data.sources
	requested(s)
	existence := [d | some d in object.get(spec, "existence_only", []); not d in never_domains]
	rule := object.union(spec, {
		"domains": [d | some d in object.get(spec, "domains", []); not d in never_domains],
		"existence_only": existence,
		"existence_notes": {d: note | some d in existence; note := contact_note(d)},
	})
}

contact_note(d) := data.domains[d].contact_note

contact_note(d) := sprintf("contact %s", [d]) if not data.domains[d].contact_note

notes contains "the resident is deceased (opschortingBijhouding O)" if {
	input.subject.opschortingBijhouding == "O"
}

decision := {
	"allow": true,
	"reasons": [sprintf("purpose %q is granted to %s", [input.purpose, grantee])],
	"notes": sort(notes),
	"processing_activity": purpose.processing_activity,
	"sources": granted,
} if {
	allow
}

decision := {
	"allow": false,
	"reasons": sort(deny),
	"notes": [],
	"processing_activity": refusal_activity,
	"sources": {},
} if {
	not allow
}

grantee := sprintf("organisation %q", [organisation]) if is_organisation

grantee := sprintf("department %q", [department]) if not is_organisation

# A refused request is still a processing of personal data: it is logged
# under the purpose's activity when the purpose exists, else under the
# gateway's own access-control activity.
refusal_activity := purpose.processing_activity if purpose

refusal_activity := data.refusal_processing_activity if not purpose
