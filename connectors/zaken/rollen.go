package zaken

import (
	"context"
	"fmt"
	"net/url"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// Query parameters of GET /rollen the connector sets.
const (
	paramRolZaak = "zaak"
	paramRolBSN  = "betrokkeneIdentificatie__natuurlijkPersoon__inpBsn"
)

// IsBetrokkene reports whether the resident is a betrokkene of the zaak
// with UUID zaakUUID: whether one of its rollen (GET /rollen?zaak=…)
// identifies the resident by BSN (betrokkeneIdentificatie.inpBsn), in any
// role. The source filters on zaak and BSN, and the connector checks both
// again. A zaak that does not exist, or an id that is no UUID (no request
// is made then), has no betrokkenen: false, nil.
//
// Errors: an invalid BSN (bsn.ErrInvalid, no request made); otherwise as
// Zaken. No error holds a BSN.
func (c *Client) IsBetrokkene(ctx context.Context, zaakUUID, residentBSN string, u User) (bool, error) {
	ok, err := c.isBetrokkene(ctx, zaakUUID, residentBSN, u)
	if err != nil {
		return false, bsn.RedactError(err)
	}
	return ok, nil
}

func (c *Client) isBetrokkene(ctx context.Context, zaakUUID, residentBSN string, u User) (bool, error) {
	if err := bsn.Check(residentBSN); err != nil {
		return false, fmt.Errorf("zaken: invalid query: %w", err)
	}
	if !upstream.IsUUID(zaakUUID) {
		return false, nil
	}
	ctx, cancel := c.up.Bound(ctx)
	defer cancel()

	zaakURL := c.zaken.String() + "/zaken/" + zaakUUID
	filter := url.Values{paramRolZaak: {zaakURL}, paramRolBSN: {residentBSN}}
	first := *c.zaken
	first.Path += "/rollen"
	first.RawQuery = filter.Encode()
	found := false
	err := upstream.Pages(ctx, c.up, first.String(),
		func(ctx context.Context, link string, page *upstream.ListPage[rolJSON]) error {
			return c.get(ctx, link, u, false, page)
		},
		func(r rolJSON) error {
			if r.Zaak == zaakURL && r.BetrokkeneIdentificatie.InpBsn == residentBSN {
				found = true
			}
			return nil
		},
		upstream.PageOptions{MaxPages: maxPages, CheckNext: func(link string) error { return samePaging(link, &first, filter) }},
	)
	if err != nil {
		return false, err
	}
	return found, nil
}

// rolJSON is the part of a Rol the connector reads.
type rolJSON struct {
	Zaak                    string `json:"zaak"`
	BetrokkeneIdentificatie struct {
		InpBsn string `json:"inpBsn"`
	} `json:"betrokkeneIdentificatie"`
}
