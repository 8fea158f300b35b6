package view

import (
	"slices"
	"strings"

	"github.com/klantbeeld/klantbeeld/policies"
)

// Handover is where the virtual assistant stopped: its latest chat
// contact whose interne taak is still open, for the employee taking over.
type Handover struct {
	// At is when the chat took place, RFC 3339 in UTC.
	At      string `json:"at,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Action is the interne taak's gevraagde handeling: what is left to do.
	Action string `json:"action"`
}

// The words of the sources for what the signals look for.
const (
	channelChat = "chat"
	// taskOpen is an interne taak not yet done (Klantinteracties status).
	taskOpen = "te_verwerken"
)

// NoteGeheimhouding is the note on the view of a resident with
// geheimhoudingPersoonsgegevens.
const NoteGeheimhouding = "the resident has geheimhoudingPersoonsgegevens: nothing may be given to third parties"

// notes are the policy's notes and the view's own about the resident.
func notes(dec []string, subject *policies.Subject) []string {
	if subject == nil || !subject.Geheimhouding || slices.Contains(dec, NoteGeheimhouding) {
		return dec
	}
	return append(slices.Clone(dec), NoteGeheimhouding)
}

// frontOffice computes the signals that come first: the open callbacks of
// the CRM and of the contacts' interne taken (a request registered in both,
// the taak's gevraagde handeling as the callback's subject, counts once),
// and the open handover. They are computed over what is disclosed: a task
// or channel the purpose may not see does not count. contacts are sorted
// newest first.
func frontOffice(callbacks []entry[Callback], contacts []dated) (open int, handover *Handover) {
	subjects := map[string]bool{}
	for _, c := range callbacks {
		if c.full.open {
			open++
			subjects[strings.ToLower(strings.TrimSpace(c.full.Subject))] = true
		}
	}
	for _, c := range contacts {
		for _, t := range c.shown.Tasks {
			if t.Status != taskOpen {
				continue
			}
			if !subjects[strings.ToLower(strings.TrimSpace(t.Action))] {
				open++
			}
			if handover == nil && c.shown.Channel == channelChat {
				handover = &Handover{At: c.shown.At, Subject: c.shown.Subject, Action: t.Action}
			}
		}
	}
	return open, handover
}
