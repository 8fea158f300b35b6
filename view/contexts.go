package view

import (
	"context"
	"errors"

	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
)

// ZaakBetrokkenen tells whether a resident is a betrokkene of a zaak
// (*zaken.Client).
type ZaakBetrokkenen interface {
	IsBetrokkene(ctx context.Context, zaakUUID, bsn string, u zaken.User) (bool, error)
}

// InterneTaken tells whether an interne taak is assigned to an employee or
// their department (*klantinteracties.Client).
type InterneTaken interface {
	InterneTaakAssigned(ctx context.Context, taakUUID string, a klantinteracties.Assignee) (bool, error)
}

// ErrUnverifiable: no configured source can verify a context of this kind.
var ErrUnverifiable = errors.New("view: no source verifies this context")

// Contexts verifies the zaak or interne taak a look-up names as its
// context, with the sources that hold them. A nil field cannot verify its
// kind: ErrUnverifiable.
type Contexts struct {
	Zaken            ZaakBetrokkenen
	Klantinteracties InterneTaken
}

// ContextsOf is the Contexts of the sources' connectors: those that can
// verify a kind of context do.
func ContextsOf(sources []Source) Contexts {
	var c Contexts
	for _, s := range sources {
		switch s := s.(type) {
		case *Zaken:
			c.Zaken, _ = s.client.(ZaakBetrokkenen)
		case *Klantinteracties:
			c.Klantinteracties, _ = s.client.(InterneTaken)
		}
	}
	return c
}

// ZaakBetrokkene reports whether the resident is a betrokkene of the zaak
// with UUID id, asking the Zaken API on behalf of u. Errors: ErrUnverifiable,
// or the connector's.
func (c Contexts) ZaakBetrokkene(ctx context.Context, id, bsn string, u User) (bool, error) {
	if c.Zaken == nil {
		return false, ErrUnverifiable
	}
	return c.Zaken.IsBetrokkene(ctx, id, bsn, zaken.User{ID: u.ID, Representation: u.Name})
}

// InterneTaakAssigned reports whether the interne taak with UUID id is
// assigned to the employee u or to their department. Errors:
// ErrUnverifiable, or the connector's.
func (c Contexts) InterneTaakAssigned(ctx context.Context, id string, u User, department string) (bool, error) {
	if c.Klantinteracties == nil {
		return false, ErrUnverifiable
	}
	return c.Klantinteracties.InterneTaakAssigned(ctx, id, klantinteracties.Assignee{Medewerker: u.ID, Afdeling: department})
}
