package view_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
	"github.com/klantbeeld/klantbeeld/view/viewtest"
)

func TestFrontOfficeSignals(t *testing.T) {
	sf := &viewtest.Salesforce{Answer: &salesforce.Profile{Tasks: []salesforce.Task{
		{ID: "t1", Subtype: "Task", Subject: "Terugbellen over paspoort", Owner: "Jan", Due: "2026-11-30", Created: daysAgo(1)},
		{ID: "t2", Subtype: "Task", Subject: "Afgehandeld", Owner: "Jan", Due: "2026-11-01", Closed: true, Created: daysAgo(30)},
	}}}
	ki := &viewtest.Klantinteracties{Answer: []klantinteracties.Contact{
		{UUID: "k1", Kanaal: "chat", Onderwerp: "Virtuele assistent: paspoort kwijt", At: daysAgo(1),
			Taken: []klantinteracties.Taak{{UUID: "tk1", GevraagdeHandeling: "Afspraak maken voor vermissing", Status: "te_verwerken"}}},
		{UUID: "k2", Kanaal: "chat", Onderwerp: "Virtuele assistent: openingstijden", At: daysAgo(3),
			Taken: []klantinteracties.Taak{{UUID: "tk2", GevraagdeHandeling: "Niets meer", Status: "verwerkt"}}},
		{UUID: "k3", Kanaal: "telefoon", Onderwerp: "Paspoort", At: daysAgo(2),
			// The same request as callback t1, registered in both systems.
			Taken: []klantinteracties.Taak{{UUID: "tk3", GevraagdeHandeling: "Terugbellen over paspoort", Status: "te_verwerken"}}},
	}}
	sources := []view.Source{view.NewSalesforce(sf), view.NewKlantinteracties(ki)}
	all := map[string]policies.SourceRule{
		"salesforce":       {Undomained: true, Records: []string{"callbacks"}, Fields: []string{"subject", "status"}},
		"klantinteracties": {Undomained: true, Fields: []string{"channel", "at", "subject", "tasks"}},
	}

	v, _ := compose(t, sources, request, allow(all))
	assert.Equal(t, 2, v.Signals.OpenCallbacks, "t1 (once, though in both systems) and the chat's taak; not what is done")
	assert.Equal(t, &view.Handover{At: daysAgo(1).UTC().Format("2006-01-02T15:04:05Z07:00"), Subject: "Virtuele assistent: paspoort kwijt", Action: "Afspraak maken voor vermissing"},
		v.Signals.Handover, "the latest chat whose taak is open")

	noTasks := map[string]policies.SourceRule{
		"salesforce":       all["salesforce"],
		"klantinteracties": {Undomained: true, Fields: []string{"channel", "at", "subject"}},
	}
	v, _ = compose(t, sources, request, allow(noTasks))
	assert.Equal(t, 1, v.Signals.OpenCallbacks, "interne taken the purpose may not see do not count")
	assert.Nil(t, v.Signals.Handover)
}
