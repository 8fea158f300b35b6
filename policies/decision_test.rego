package klantbeeld_test

import data.klantbeeld
import rego.v1

employee(department) := {"sub": "emp-1", "department": department, "roles": ["medewerker"]}

# view is a resident-view request with the context its purpose requires
# first (an id the gateway would have verified); bare has none.
view(actor, purpose) := object.union(bare(actor, purpose), {"context": {"type": t, "id": "c-1"}}) if {
	t := data.purposes[purpose].requires_context[0]
} else := bare(actor, purpose)

bare(actor, purpose) := {"actor": actor, "action": "resident-view", "purpose": purpose}

decide(q) := d if {
	d := klantbeeld.decision with input as q
}

# --- every row of the purpose matrix ---------------------------------------

test_reisdocumenten_row if {
	d := decide(view(employee("burgerzaken"), "reisdocumenten"))
	d.allow
	d.processing_activity == "https://register.gemeente.example/verwerkingsactiviteiten/burza-reisdocumenten"
	object.keys(d.sources) == {"brp", "zaken", "salesforce", "klantinteracties"}
	{f | some f in d.sources.brp.fields} == {"naam", "geboorte", "verblijfplaats", "nationaliteiten", "burgerservicenummer"}
	d.sources.zaken.domains == ["BURZA"]
	d.sources.zaken.max_vertrouwelijkheid == "vertrouwelijk"
	d.sources.zaken.existence_only == []
	d.sources.salesforce.domains == ["BURZA"]
	{r | some r in d.sources.salesforce.records} == {"cases", "callbacks"}
	d.sources.salesforce.undomained == false
	d.sources.klantinteracties.domains == ["BURZA"]
	d.sources.klantinteracties.undomained == true
	d.sources.klantinteracties.vertrouwelijk == false
}

test_bijstand_row if {
	d := decide(view(employee("sociale-zaken"), "bijstand"))
	d.allow
	d.processing_activity == "https://register.gemeente.example/verwerkingsactiviteiten/socza-bijstand"
	{f | some f in d.sources.brp.fields} == {"naam", "geboorte", "verblijfplaats", "nationaliteiten", "burgerservicenummer", "partners", "kinderen", "ouders"}
	d.sources.zaken.domains == ["SOCZA"]
	d.sources.zaken.max_vertrouwelijkheid == "geheim"
	d.sources.salesforce.domains == ["SOCZA"]
	{r | some r in d.sources.salesforce.records} == {"cases", "callbacks"}
	d.sources.klantinteracties.domains == ["SOCZA"]
	d.sources.klantinteracties.undomained == true
	d.sources.klantinteracties.vertrouwelijk == true
}

test_klantcontact_row if {
	d := decide(view(employee("kcc"), "klantcontact"))
	d.allow
	{f | some f in d.sources.brp.fields} == {"naam", "adressering"}
	{x | some x in d.sources.zaken.domains} == {"BURZA", "KCC"}
	d.sources.zaken.existence_only == ["SOCZA"]
	d.sources.zaken.existence_notes == {"SOCZA": "contact Sociale Zaken"}
	d.sources.zaken.existence_codes == {"SOCZA": "existence_only"}
	d.codes == []
	d.sources.zaken.max_vertrouwelijkheid == "zaakvertrouwelijk"

	# metadata only: no omschrijving, no vertrouwelijkheidaanduiding
	{f | some f in d.sources.zaken.fields} == {"identificatie", "zaaktype", "status", "startdatum", "einddatum", "einddatumGepland"}
	not "SOCZA" in d.sources.salesforce.domains
	{r | some r in d.sources.salesforce.records} == {"cases", "open-callbacks", "calls"}
	d.sources.klantinteracties.max_age_days == 90
	d.sources.klantinteracties.vertrouwelijk == false
}

test_inzage_row_only_for_subject_access if {
	d := decide({"actor": employee("burgerzaken"), "action": "subject-access", "purpose": "inzage"})
	d.allow
	object.keys(d.sources) == {"brp"}
	d.sources.brp.fields == ["naam"]

	v := decide(view(employee("burgerzaken"), "inzage"))
	not v.allow
	"purpose \"inzage\" is not for resident-view" in v.reasons
	v.codes == ["action_not_granted"]
}

test_inzage_for_any_department if {
	every dept in ["burgerzaken", "sociale-zaken", "kcc", "belastingen"] {
		decide({"actor": employee(dept), "action": "subject-access", "purpose": "inzage"}).allow
	}
}

test_purpose_not_granted_to_other_departments if {
	cases := [
		["burgerzaken", "bijstand"],
		["burgerzaken", "klantcontact"],
		["sociale-zaken", "reisdocumenten"],
		["sociale-zaken", "klantcontact"],
		["kcc", "reisdocumenten"],
		["kcc", "bijstand"],
	]
	every c in cases {
		d := decide(view(employee(c[0]), c[1]))
		not d.allow
		sprintf("purpose %q is not granted to department %q", [c[1], c[0]]) in d.reasons
		d.codes == ["purpose_not_granted"]
		d.sources == {}
	}
}

test_requested_sources_narrow_the_grant if {
	q := object.union(view(employee("burgerzaken"), "reisdocumenten"), {"sources": ["brp", "zaken"]})
	d := decide(q)
	d.allow
	object.keys(d.sources) == {"brp", "zaken"}
}

test_requested_source_not_in_purpose_is_not_granted if {
	q := object.union({"actor": employee("kcc"), "action": "subject-access", "purpose": "inzage"}, {"sources": ["zaken"]})
	d := decide(q)
	d.allow
	d.sources == {}
}

# --- invariants --------------------------------------------------------------

test_invariant_burgerzaken_never_socza_even_if_data_grants_it if {
	hostile := json.patch(data.purposes, [
		{"op": "add", "path": "/reisdocumenten/sources/zaken/domains/-", "value": "SOCZA"},
		{"op": "add", "path": "/reisdocumenten/sources/zaken/existence_only", "value": ["SOCZA"]},
		{"op": "add", "path": "/reisdocumenten/sources/salesforce/domains/-", "value": "SOCZA"},
		{"op": "add", "path": "/reisdocumenten/sources/klantinteracties/domains/-", "value": "SOCZA"},
	])
	d := klantbeeld.decision with input as view(employee("burgerzaken"), "reisdocumenten") with data.purposes as hostile
	d.allow
	every rule in d.sources {
		not "SOCZA" in object.get(rule, "domains", [])
		not "SOCZA" in object.get(rule, "existence_only", [])
	}
}

test_invariant_burgerzaken_never_socza_through_a_shared_purpose if {
	# a purpose granted to burgerzaken and kcc: kcc's existence-only SOCZA must go too
	shared := json.patch(data.purposes, [{"op": "add", "path": "/klantcontact/departments/-", "value": "burgerzaken"}])
	d := klantbeeld.decision with input as view(employee("burgerzaken"), "klantcontact") with data.purposes as shared
	d.allow
	d.sources.zaken.existence_only == []
	not "SOCZA" in d.sources.klantinteracties.domains
}

test_invariant_auditor_and_privacy_officer_never_get_data if {
	every role in ["auditor", "privacy-officer"] {
		every p in ["reisdocumenten", "bijstand", "klantcontact"] {
			d := decide(view({"sub": "x", "department": "burgerzaken", "roles": [role]}, p))
			not d.allow
			sprintf("role %q may not receive resident data", [role]) in d.reasons
			"no_data_role" in d.codes
		}
	}
}

test_invariant_auditor_role_wins_over_medewerker if {
	d := decide(view({"sub": "x", "department": "burgerzaken", "roles": ["medewerker", "auditor"]}, "reisdocumenten"))
	not d.allow
}

test_invariant_unknown_purpose_denied if {
	d := decide(view(employee("burgerzaken"), "nieuwsgierigheid"))
	not d.allow
	"unknown purpose \"nieuwsgierigheid\"" in d.reasons
	d.codes == ["purpose_unknown"]
	d.processing_activity == data.refusal_processing_activity
}

test_invariant_missing_claims_denied if {
	cases := [
		[{"department": "burgerzaken", "roles": ["medewerker"]}, "token has no subject (sub)"],
		[{"sub": "", "department": "burgerzaken", "roles": ["medewerker"]}, "token has no subject (sub)"],
		[{"sub": "x", "roles": ["medewerker"]}, "employee token has no department"],
		[{"sub": "x", "department": "burgerzaken"}, "employee token lacks the role \"medewerker\""],
		[{"sub": "x", "department": "burgerzaken", "roles": []}, "employee token lacks the role \"medewerker\""],
	]
	every c in cases {
		d := decide(view(c[0], "reisdocumenten"))
		not d.allow
		c[1] in d.reasons
		d.codes == ["missing_claim"]
	}
}

test_invariant_no_actor_denied if {
	d := decide({"purpose": "reisdocumenten"})
	not d.allow
}

test_invariant_missing_purpose_denied if {
	d := decide({"actor": employee("burgerzaken"), "action": "resident-view"})
	not d.allow
	"no purpose given" in d.reasons
	d.codes == ["purpose_missing"]
}

test_invariant_organisation_without_grant_denied if {
	d := decide(view({"sub": "client-1", "organisation": "00000001234567890000"}, "reisdocumenten"))
	not d.allow
	"purpose \"reisdocumenten\" is not granted to organisation \"00000001234567890000\"" in d.reasons
	d.codes == ["purpose_not_granted"]
}

test_invariant_geheimhouding_never_to_organisation if {
	granted := json.patch(data.purposes, [{"op": "add", "path": "/reisdocumenten/organisations/-", "value": "00000001234567890000"}])
	org := {"sub": "client-1", "organisation": "00000001234567890000"}
	open := klantbeeld.decision with input as view(org, "reisdocumenten") with data.purposes as granted
	open.allow
	secret := object.union(view(org, "reisdocumenten"), {"subject": {"geheimhoudingPersoonsgegevens": true}})
	d := klantbeeld.decision with input as secret with data.purposes as granted
	not d.allow
	d.codes == ["geheimhouding_organisation"]
	d.sources == {}
}

test_geheimhouding_does_not_block_employees if {
	q := object.union(view(employee("burgerzaken"), "reisdocumenten"), {"subject": {"geheimhoudingPersoonsgegevens": true}})
	decide(q).allow
}

test_invariant_every_decision_names_its_processing_activity if {
	inputs := [
		view(employee("burgerzaken"), "reisdocumenten"),
		view(employee("sociale-zaken"), "bijstand"),
		view(employee("kcc"), "klantcontact"),
		view(employee("burgerzaken"), "bijstand"),
		view(employee("burgerzaken"), "onbekend"),
		view({"sub": "a", "roles": ["auditor"]}, "reisdocumenten"),
		{},
	]
	every q in inputs {
		pa := decide(q).processing_activity
		is_string(pa)
		pa != ""
	}
}

test_required_context if {
	needs := json.patch(data.purposes, [{"op": "replace", "path": "/bijstand/requires_context", "value": ["zaak"]}])
	without := klantbeeld.decision with input as bare(employee("sociale-zaken"), "bijstand") with data.purposes as needs
	not without.allow
	"purpose \"bijstand\" requires a context of type zaak" in without.reasons
	without.codes == ["context_required"]

	wrong_type := object.union(bare(employee("sociale-zaken"), "bijstand"), {"context": {"type": "klantcontact", "id": "k-1"}})
	wrong := klantbeeld.decision with input as wrong_type with data.purposes as needs
	not wrong.allow

	with_ctx := object.union(bare(employee("sociale-zaken"), "bijstand"), {"context": {"type": "zaak", "id": "ZAAK-2026-0000103"}})
	right := klantbeeld.decision with input as with_ctx with data.purposes as needs
	right.allow
}

test_deceased_is_noted if {
	q := object.union(view(employee("burgerzaken"), "reisdocumenten"), {"subject": {"opschortingBijhouding": "O"}})
	d := decide(q)
	d.allow
	d.notes == ["the resident is deceased (opschortingBijhouding O)"]
}

test_denied_decision_grants_no_source if {
	d := decide(view(employee("kcc"), "bijstand"))
	not d.allow
	d.sources == {}
}

test_every_denial_has_a_code_per_kind_of_reason if {
	inputs := [
		view(employee("burgerzaken"), "bijstand"),
		view(employee("burgerzaken"), "onbekend"),
		view({"sub": "a", "roles": ["auditor"]}, "reisdocumenten"),
		{},
	]
	every q in inputs {
		d := decide(q)
		not d.allow
		count(d.codes) > 0
		every c in d.codes {
			regex.match(`^[a-z][a-z0-9_]*$`, c)
		}
	}
}

test_several_denials_give_every_code_once if {
	d := decide(view({"department": "burgerzaken", "roles": ["auditor"]}, "bijstand"))
	d.codes == ["missing_claim", "no_data_role", "purpose_not_granted"]
	count(d.reasons) == 4
}

test_allowed_decision_has_no_codes if {
	d := decide(view(employee("burgerzaken"), "reisdocumenten"))
	d.allow
	d.codes == []
}

test_source_rule_is_the_data_entry_with_existence_notes_and_codes if {
	d := decide(view(employee("kcc"), "klantcontact"))
	d.sources.brp == data.purposes.klantcontact.sources.brp
	d.sources.salesforce == data.purposes.klantcontact.sources.salesforce
	d.sources.zaken == object.union(data.purposes.klantcontact.sources.zaken, {
		"existence_notes": {"SOCZA": "contact Sociale Zaken"},
		"existence_codes": {"SOCZA": "existence_only"},
	})
}

test_existence_only_domain_without_a_note_gets_a_default if {
	odd := json.patch(data.purposes, [{"op": "replace", "path": "/klantcontact/sources/zaken/existence_only", "value": ["BELAS"]}])
	d := klantbeeld.decision with input as view(employee("kcc"), "klantcontact") with data.purposes as odd
	d.sources.zaken.existence_notes == {"BELAS": "contact BELAS"}
	d.sources.zaken.existence_codes == {"BELAS": "existence_only"}
}

test_claims_that_are_not_strings_are_missing if {
	d := decide(view({"sub": 42, "department": ["kcc"], "roles": ["medewerker"]}, "klantcontact"))
	not d.allow
	"token has no subject (sub)" in d.reasons
	"employee token has no department" in d.reasons
}

test_unknown_source_is_never_granted if {
	extra := json.patch(data.purposes, [{"op": "add", "path": "/klantcontact/sources/belastingen", "value": {"fields": ["aanslag"]}}])
	d := klantbeeld.decision with input as view(employee("kcc"), "klantcontact") with data.purposes as extra
	d.allow
	not d.sources.belastingen
}

# --- uwv-werk-en-inkomen: a purpose of another government ------------------

uwv := {"sub": "00000001000000000001", "organisation": "00000001000000000001", "name": "UWV"}

test_uwv_werk_en_inkomen_row if {
	d := decide(view(uwv, "uwv-werk-en-inkomen"))
	d.allow
	d.processing_activity == "https://register.gemeente.example/verwerkingsactiviteiten/verstrekking-uwv-werk-en-inkomen"
	d.reasons == ["purpose \"uwv-werk-en-inkomen\" is granted to organisation \"00000001000000000001\""]

	# BRP naam, geboorte, verblijfplaats only; never zaken, CRM or channel contacts
	object.keys(d.sources) == {"brp"}
	{f | some f in d.sources.brp.fields} == {"naam", "geboorte", "verblijfplaats"}
}

test_uwv_werk_en_inkomen_asking_for_other_sources_gets_none if {
	q := object.union(view(uwv, "uwv-werk-en-inkomen"), {"sources": ["zaken", "salesforce", "klantinteracties"]})
	d := decide(q)
	d.allow
	d.sources == {}
}

test_uwv_werk_en_inkomen_never_for_geheimhouding if {
	q := object.union(view(uwv, "uwv-werk-en-inkomen"), {"subject": {"geheimhoudingPersoonsgegevens": true}})
	d := decide(q)
	not d.allow
	d.codes == ["geheimhouding_organisation"]
	"the resident has geheimhoudingPersoonsgegevens: nothing is disclosed to organisations" in d.reasons
	d.sources == {}
}

test_uwv_werk_en_inkomen_not_for_other_organisations if {
	other := {"sub": "00000001000000000002", "organisation": "00000001000000000002"}
	d := decide(view(other, "uwv-werk-en-inkomen"))
	not d.allow
	d.codes == ["purpose_not_granted"]
}

test_uwv_werk_en_inkomen_not_for_employees if {
	every dept in ["burgerzaken", "sociale-zaken", "kcc"] {
		d := decide(view(employee(dept), "uwv-werk-en-inkomen"))
		not d.allow
		d.codes == ["purpose_not_granted"]
	}
}

test_uwv_holds_no_municipal_purpose if {
	every p in ["reisdocumenten", "bijstand", "klantcontact", "inzage"] {
		d := decide(view(uwv, p))
		not d.allow
		"purpose_not_granted" in d.codes
	}
}

test_uwv_werk_en_inkomen_not_for_subject_access if {
	d := decide(object.union(view(uwv, "uwv-werk-en-inkomen"), {"action": "subject-access"}))
	not d.allow
	d.codes == ["action_not_granted"]
}

# --- purpose binding to a task: contexts and break-glass --------------------

test_purposes_require_their_contexts if {
	data.purposes.klantcontact.requires_context == ["contact-session"]
	{t | some t in data.purposes.reisdocumenten.requires_context} == {"contact-session", "zaak"}
	{t | some t in data.purposes.bijstand.requires_context} == {"zaak", "internetaak"}
	every p in ["klantcontact", "reisdocumenten", "bijstand"] {
		d := decide(bare(employee(object.get({"klantcontact": "kcc", "reisdocumenten": "burgerzaken"}, p, "sociale-zaken")), p))
		not d.allow
		d.codes == ["context_required"]
		d.sources == {}
	}
}

test_each_accepted_context_type_lets_the_look_up_through if {
	every c in [
		["kcc", "klantcontact", "contact-session"],
		["burgerzaken", "reisdocumenten", "contact-session"],
		["burgerzaken", "reisdocumenten", "zaak"],
		["sociale-zaken", "bijstand", "zaak"],
		["sociale-zaken", "bijstand", "internetaak"],
	] {
		decide(object.union(bare(employee(c[0]), c[1]), {"context": {"type": c[2], "id": "c-1"}})).allow
	}
}

test_a_context_of_another_type_does_not_count if {
	every c in [
		["kcc", "klantcontact", "zaak"],
		["kcc", "klantcontact", "klantcontact"],
		["burgerzaken", "reisdocumenten", "internetaak"],
		["sociale-zaken", "bijstand", "contact-session"],
	] {
		d := decide(object.union(bare(employee(c[0]), c[1]), {"context": {"type": c[2], "id": "c-1"}}))
		not d.allow
		d.codes == ["context_required"]
	}
}

test_a_context_without_id_does_not_count if {
	d := decide(object.union(bare(employee("kcc"), "klantcontact"), {"context": {"type": "contact-session", "id": ""}}))
	not d.allow
	d.codes == ["context_required"]
}

break_glass(actor, purpose) := object.union(bare(actor, purpose), {"context": {"type": "break-glass", "id": "redacted"}})

test_break_glass_stands_in_for_the_context_where_allowed if {
	every c in [["kcc", "klantcontact"], ["burgerzaken", "reisdocumenten"], ["sociale-zaken", "bijstand"]] {
		d := decide(break_glass(employee(c[0]), c[1]))
		d.allow
		d.codes == []
	}
}

test_break_glass_is_refused_where_the_purpose_does_not_allow_it if {
	no := json.patch(data.purposes, [{"op": "replace", "path": "/klantcontact/break_glass", "value": false}])
	d := klantbeeld.decision with input as break_glass(employee("kcc"), "klantcontact") with data.purposes as no
	not d.allow
	d.codes == ["break_glass_not_allowed"]
	"purpose \"klantcontact\" does not allow break-glass" in d.reasons

	absent := json.remove(data.purposes, ["klantcontact/break_glass"])
	a := klantbeeld.decision with input as break_glass(employee("kcc"), "klantcontact") with data.purposes as absent
	not a.allow
	a.codes == ["break_glass_not_allowed"]
}

test_break_glass_is_never_for_organisations if {
	oin := "00000001234567890000"
	granted := json.patch(data.purposes, [{"op": "replace", "path": "/klantcontact/organisations", "value": [oin]}])
	org := {"sub": "svc", "organisation": oin}
	with_ctx := object.union(bare(org, "klantcontact"), {"context": {"type": "contact-session", "id": "c-1"}})
	ok := klantbeeld.decision with input as with_ctx with data.purposes as granted
	ok.allow
	d := klantbeeld.decision with input as break_glass(org, "klantcontact") with data.purposes as granted
	not d.allow
	d.codes == ["break_glass_not_allowed"]
	"break-glass is never allowed to organisations" in d.reasons
}

test_break_glass_does_not_widen_the_purpose if {
	d := decide(break_glass(employee("burgerzaken"), "bijstand"))
	not d.allow
	"purpose_not_granted" in d.codes
}
