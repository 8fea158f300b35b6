package klantinteracties

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// Kinds of actor (soortActor) an interne taak can be assigned to.
const (
	actorMedewerker              = "medewerker"
	actorOrganisatorischeEenheid = "organisatorische_eenheid"
)

// Assignee is an employee as the register knows them: a medewerker actor
// whose actoridentificator objectId is Medewerker (the employee's id, the
// token's sub), and the organisatorische eenheid whose objectId is
// Afdeling (their department's code).
type Assignee struct{ Medewerker, Afdeling string }

// InterneTaakAssigned reports whether the interne taak with UUID taakUUID
// is assigned (toegewezenAanActoren) to the employee or to their
// department. A taak that does not exist, or an id that is no UUID (no
// request is made then), is assigned to nobody: false, nil. An empty
// Medewerker or Afdeling matches no actor.
//
// Errors: as Contacts (upstream.ErrRejected, ErrUnavailable, ErrTimeout,
// ErrCircuitOpen, ErrBadResponse, ErrForeignLink, the context's error).
func (c *Client) InterneTaakAssigned(ctx context.Context, taakUUID string, a Assignee) (bool, error) {
	if !upstream.IsUUID(taakUUID) {
		return false, nil
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	var taak struct {
		UUID                 string   `json:"uuid"`
		ToegewezenAanActoren []fkJSON `json:"toegewezenAanActoren"`
	}
	if err := c.get(ctx, c.base+"/internetaken/"+taakUUID, &taak); err != nil {
		if se, ok := errors.AsType[*upstream.StatusError](err); ok && se.Status == http.StatusNotFound {
			return false, nil
		}
		return false, err
	}
	if taak.UUID != taakUUID {
		return false, fmt.Errorf("%s: %w: interne taak answered with another uuid", name, upstream.ErrBadResponse)
	}
	for _, ref := range taak.ToegewezenAanActoren {
		if ref.URL == "" {
			return false, fmt.Errorf("%s: %w: toegewezen actor without url", name, upstream.ErrBadResponse)
		}
		var actor struct {
			SoortActor         string `json:"soortActor"`
			Actoridentificator *struct {
				ObjectID string `json:"objectId"`
			} `json:"actoridentificator"`
		}
		if err := c.get(ctx, ref.URL, &actor); err != nil {
			return false, err
		}
		if actor.Actoridentificator == nil || actor.Actoridentificator.ObjectID == "" {
			continue
		}
		id := actor.Actoridentificator.ObjectID
		switch actor.SoortActor {
		case actorMedewerker:
			if a.Medewerker != "" && id == a.Medewerker {
				return true, nil
			}
		case actorOrganisatorischeEenheid:
			if a.Afdeling != "" && id == a.Afdeling {
				return true, nil
			}
		}
	}
	return false, nil
}
