package klantinteracties

// The write side: what a wrap-up leaves in the register (a klantcontact,
// its betrokkene, the onderwerpobject of its zaak, an interne taak for a
// callback and the actor it is assigned to) and the updates of a callback's
// interne taak.
//
// Writes are not retried here (a POST is not idempotent). Each Find… method
// is the look-up that makes a retried write idempotent: a caller that lost
// the answer to a create asks first whether the object is there (a
// klantcontact by its referentienummer, the others by their klantcontact)
// and creates it only when it is not.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// ErrInvalidWrite: a value of a write failed validation; nothing was sent.
var ErrInvalidWrite = errors.New("klantinteracties: invalid write")

// Statuses of an interne taak.
const (
	StatusTeVerwerken = "te_verwerken"
	StatusVerwerkt    = "verwerkt"
)

// Kinds of actor an interne taak can be assigned to.
const (
	ActorAfdeling   = "afdeling"   // organisatorische_eenheid, codeObjecttype "afd"
	ActorGroep      = "groep"      // organisatorische_eenheid, codeObjecttype "grp"
	ActorMedewerker = "medewerker" // medewerker, codeObjecttype "mdw"
)

// NewKlantcontact is a klantcontact to create.
type NewKlantcontact struct {
	// Referentienummer (at most 10 characters) identifies the contact for
	// FindKlantcontact; required, since a write without it cannot be
	// made idempotent.
	Referentienummer string
	Kanaal           string // at most 50 characters
	Onderwerp        string // at most 200
	Inhoud           string // at most 1000
	Vertrouwelijk    bool
	At               time.Time // plaatsgevondenOp
	Taal             string    // ISO 639-2/B, "" means "nld"
}

// Klantcontact is a klantcontact as created or found.
type Klantcontact struct {
	UUID, Referentienummer, Kanaal, Onderwerp string
}

// Actor is someone an interne taak is assigned to: an afdeling or groep
// (organisatorische eenheid) or a medewerker, identified in the
// municipality's own register by ID.
type Actor struct {
	Kind string // ActorAfdeling, ActorGroep or ActorMedewerker
	ID   string // the afdeling's or groep's code, the medewerker's user name
	Naam string // display name; "" means ID
}

// InterneTaak is an interne taak as created, found or read.
type InterneTaak struct {
	UUID               string
	Klantcontact       string // aanleidinggevendKlantcontact
	GevraagdeHandeling string
	Toelichting        string
	Status             string
	Actoren            []string // toegewezenAanActoren
	ToegewezenOp       time.Time
}

// NewInterneTaak is an interne taak to create.
type NewInterneTaak struct {
	Klantcontact       string // UUID
	GevraagdeHandeling string // at most 200
	Toelichting        string // at most 1000
	Actoren            []string
}

// TaakUpdate changes an interne taak; nil fields stay as they are.
type TaakUpdate struct {
	Status  *string
	Actoren []string // nil: unchanged; the new set of actoren otherwise
}

// Partij returns the UUID of the resident's partij, "" when no partij
// carries the BSN. More than one is an error: a write must not guess.
func (c *Client) Partij(ctx context.Context, burgerservicenummer string) (string, error) {
	if err := bsn.Check(burgerservicenummer); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	ps, err := c.partijen(ctx, burgerservicenummer)
	switch {
	case err != nil:
		return "", bsn.RedactError(err)
	case len(ps) > 1:
		return "", fmt.Errorf("%s: %w: more than one partij has the BSN", name, upstream.ErrBadResponse)
	case len(ps) == 0:
		return "", nil
	}
	return ps[0], nil
}

func checkLen(field, s string, n int, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidWrite, field)
	}
	if utf8.RuneCountInString(s) > n {
		return fmt.Errorf("%w: %s is longer than %d characters", ErrInvalidWrite, field, n)
	}
	return nil
}

func checkUUID(field, s string) error {
	if !upstream.IsUUID(s) {
		return fmt.Errorf("%w: %s is no UUID", ErrInvalidWrite, field)
	}
	return nil
}

// FindKlantcontact returns the klantcontact with this referentienummer, or
// nil when there is none.
func (c *Client) FindKlantcontact(ctx context.Context, referentienummer string) (*Klantcontact, error) {
	if err := checkLen("referentienummer", referentienummer, 10, true); err != nil {
		return nil, err
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	var found *Klantcontact
	v := url.Values{"referentienummer": {referentienummer}, "pageSize": {"10"}}
	err := pages(ctx, c, c.base+"/klantcontacten?"+v.Encode(), func(kc klantcontactWrittenJSON) error {
		if kc.Referentienummer != nil && *kc.Referentienummer == referentienummer && found == nil {
			found = kc.klantcontact()
		}
		return nil
	})
	return found, err
}

// CreateKlantcontact creates a klantcontact.
func (c *Client) CreateKlantcontact(ctx context.Context, kc NewKlantcontact) (*Klantcontact, error) {
	for _, err := range []error{
		checkLen("referentienummer", kc.Referentienummer, 10, true),
		checkLen("kanaal", kc.Kanaal, 50, true),
		checkLen("onderwerp", kc.Onderwerp, 200, true),
		checkLen("inhoud", kc.Inhoud, 1000, false),
		checkLen("taal", kc.Taal, 3, false),
	} {
		if err != nil {
			return nil, err
		}
	}
	if kc.Taal == "" {
		kc.Taal = "nld"
	}
	if kc.At.IsZero() {
		return nil, fmt.Errorf("%w: At is zero", ErrInvalidWrite)
	}
	body := map[string]any{
		"referentienummer":       kc.Referentienummer,
		"kanaal":                 kc.Kanaal,
		"onderwerp":              kc.Onderwerp,
		"inhoud":                 kc.Inhoud,
		"indicatieContactGelukt": true,
		"taal":                   kc.Taal,
		"vertrouwelijk":          kc.Vertrouwelijk,
		"plaatsgevondenOp":       kc.At.UTC().Format(time.RFC3339),
	}
	var out klantcontactWrittenJSON
	if err := c.send(ctx, http.MethodPost, "/klantcontacten", body, &out); err != nil {
		return nil, err
	}
	if !upstream.IsUUID(out.UUID) {
		return nil, fmt.Errorf("%s: klantcontact: %w: no uuid", name, upstream.ErrBadResponse)
	}
	return out.klantcontact(), nil
}

// FindBetrokkene returns the UUID of the betrokkene of klantcontact that
// was partij ("" matches a betrokkene without partij), or "" when none.
func (c *Client) FindBetrokkene(ctx context.Context, klantcontact, partij string) (string, error) {
	if err := checkUUID("klantcontact", klantcontact); err != nil {
		return "", err
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	found := ""
	v := url.Values{"hadKlantcontact__uuid": {klantcontact}, "pageSize": {"100"}}
	err := pages(ctx, c, c.base+"/betrokkenen?"+v.Encode(), func(b betrokkeneWrittenJSON) error {
		p := ""
		if b.WasPartij != nil {
			p = b.WasPartij.UUID
		}
		if found == "" && b.HadKlantcontact.UUID == klantcontact && strings.EqualFold(p, partij) {
			found = b.UUID
		}
		return nil
	})
	return found, err
}

// CreateBetrokkene makes the resident's partij (or, with partij "", an
// unidentified resident named naam) the initiating klant of klantcontact.
func (c *Client) CreateBetrokkene(ctx context.Context, klantcontact, partij, naam string) (string, error) {
	if err := checkUUID("klantcontact", klantcontact); err != nil {
		return "", err
	}
	body := map[string]any{
		"hadKlantcontact": map[string]string{"uuid": klantcontact},
		"rol":             "klant",
		"initiator":       true,
		"organisatienaam": "",
	}
	if partij != "" {
		if err := checkUUID("partij", partij); err != nil {
			return "", err
		}
		body["wasPartij"] = map[string]string{"uuid": partij}
	} else {
		body["wasPartij"] = nil
	}
	if naam != "" {
		if err := checkLen("naam", naam, 200, false); err != nil {
			return "", err
		}
		body["contactnaam"] = map[string]string{"achternaam": naam}
	}
	var out betrokkeneWrittenJSON
	if err := c.send(ctx, http.MethodPost, "/betrokkenen", body, &out); err != nil {
		return "", err
	}
	return out.UUID, nonEmptyUUID("betrokkene", out.UUID)
}

// zaakIdentificator is how a zaak in Open Zaak is identified as an
// onderwerpobject: the same shape the read side recognises.
func zaakIdentificator(zaak string) map[string]string {
	return map[string]string{
		"objectId":          strings.ToLower(zaak),
		"codeObjecttype":    "zaak",
		"codeRegister":      "openzaak",
		"codeSoortObjectId": "uuid",
	}
}

// FindZaakOnderwerpobject returns the UUID of klantcontact's onderwerpobject
// for zaak, or "" when there is none.
func (c *Client) FindZaakOnderwerpobject(ctx context.Context, klantcontact, zaak string) (string, error) {
	if err := checkUUID("klantcontact", klantcontact); err != nil {
		return "", err
	}
	if err := checkUUID("zaak", zaak); err != nil {
		return "", err
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	found := ""
	v := url.Values{"klantcontact__uuid": {klantcontact}, "onderwerpobjectidentificatorObjectId": {strings.ToLower(zaak)}, "pageSize": {"100"}}
	err := pages(ctx, c, c.base+"/onderwerpobjecten?"+v.Encode(), func(o onderwerpobjectJSON) error {
		id, isZaak, err := zaakUUID(o.Onderwerpobjectidentificator)
		if err == nil && isZaak && id == strings.ToLower(zaak) && found == "" {
			found = o.UUID
		}
		return nil
	})
	return found, err
}

// CreateZaakOnderwerpobject records that klantcontact was about zaak (the
// zaak's UUID in Open Zaak).
func (c *Client) CreateZaakOnderwerpobject(ctx context.Context, klantcontact, zaak string) (string, error) {
	if err := checkUUID("klantcontact", klantcontact); err != nil {
		return "", err
	}
	if err := checkUUID("zaak", zaak); err != nil {
		return "", err
	}
	body := map[string]any{
		"klantcontact":                 map[string]string{"uuid": klantcontact},
		"wasKlantcontact":              nil,
		"onderwerpobjectidentificator": zaakIdentificator(zaak),
	}
	var out onderwerpobjectJSON
	if err := c.send(ctx, http.MethodPost, "/onderwerpobjecten", body, &out); err != nil {
		return "", err
	}
	return out.UUID, nonEmptyUUID("onderwerpobject", out.UUID)
}

// actorIdentificator is how each kind of actor is identified in the
// register (the codes Open Klant's own front ends use).
func actorIdentificator(a Actor) (soort string, id map[string]string, err error) {
	if err := checkLen("actor ID", a.ID, 200, true); err != nil {
		return "", nil, err
	}
	switch a.Kind {
	case ActorAfdeling:
		return "organisatorische_eenheid", map[string]string{"objectId": a.ID, "codeObjecttype": "afd", "codeRegister": "obj", "codeSoortObjectId": "idf"}, nil
	case ActorGroep:
		return "organisatorische_eenheid", map[string]string{"objectId": a.ID, "codeObjecttype": "grp", "codeRegister": "obj", "codeSoortObjectId": "idf"}, nil
	case ActorMedewerker:
		return "medewerker", map[string]string{"objectId": a.ID, "codeObjecttype": "mdw", "codeRegister": "handmatig", "codeSoortObjectId": "gebruikersnaam"}, nil
	}
	return "", nil, fmt.Errorf("%w: actor kind %q is not afdeling, groep or medewerker", ErrInvalidWrite, a.Kind)
}

// EnsureActor returns the UUID of the actor a, creating it when the
// register does not have it yet.
func (c *Client) EnsureActor(ctx context.Context, a Actor) (string, error) {
	soort, ident, err := actorIdentificator(a)
	if err != nil {
		return "", err
	}
	found, err := c.findActor(ctx, soort, ident)
	if err != nil || found != "" {
		return found, err
	}
	naam := a.Naam
	if naam == "" {
		naam = a.ID
	}
	if err := checkLen("actor Naam", naam, 200, true); err != nil {
		return "", err
	}
	body := map[string]any{
		"naam":               naam,
		"soortActor":         soort,
		"indicatieActief":    true,
		"actoridentificator": ident,
	}
	var out fkJSON
	if err := c.send(ctx, http.MethodPost, "/actoren", body, &out); err != nil {
		return "", err
	}
	return out.UUID, nonEmptyUUID("actor", out.UUID)
}

func (c *Client) findActor(ctx context.Context, soort string, ident map[string]string) (string, error) {
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	v := url.Values{
		"soortActor":                          {soort},
		"actoridentificatorObjectId":          {ident["objectId"]},
		"actoridentificatorCodeObjecttype":    {ident["codeObjecttype"]},
		"actoridentificatorCodeRegister":      {ident["codeRegister"]},
		"actoridentificatorCodeSoortObjectId": {ident["codeSoortObjectId"]},
		"pageSize":                            {"10"},
	}
	found := ""
	err := pages(ctx, c, c.base+"/actoren?"+v.Encode(), func(a actorJSON) error {
		if found == "" && a.SoortActor == soort && a.Actoridentificator != nil &&
			a.Actoridentificator.ObjectID == ident["objectId"] && a.Actoridentificator.CodeObjecttype == ident["codeObjecttype"] {
			found = a.UUID
		}
		return nil
	})
	return found, err
}

// FindInterneTaak returns the interne taak klantcontact led to, or nil.
func (c *Client) FindInterneTaak(ctx context.Context, klantcontact string) (*InterneTaak, error) {
	if err := checkUUID("klantcontact", klantcontact); err != nil {
		return nil, err
	}
	taken, err := c.interneTaken(ctx, url.Values{"aanleidinggevendKlantcontact__uuid": {klantcontact}})
	if err != nil || len(taken) == 0 {
		return nil, err
	}
	return &taken[0], nil
}

// CreateInterneTaak creates an interne taak, status te_verwerken.
func (c *Client) CreateInterneTaak(ctx context.Context, t NewInterneTaak) (*InterneTaak, error) {
	if err := checkUUID("klantcontact", t.Klantcontact); err != nil {
		return nil, err
	}
	if err := checkLen("gevraagdeHandeling", t.GevraagdeHandeling, 200, true); err != nil {
		return nil, err
	}
	if err := checkLen("toelichting", t.Toelichting, 1000, false); err != nil {
		return nil, err
	}
	actoren, err := actorFKs(t.Actoren)
	if err != nil {
		return nil, err
	}
	body := map[string]any{
		"aanleidinggevendKlantcontact": map[string]string{"uuid": t.Klantcontact},
		"gevraagdeHandeling":           t.GevraagdeHandeling,
		"toelichting":                  t.Toelichting,
		"toegewezenAanActoren":         actoren,
		"status":                       StatusTeVerwerken,
	}
	var out interneTaakWrittenJSON
	if err := c.send(ctx, http.MethodPost, "/internetaken", body, &out); err != nil {
		return nil, err
	}
	return out.taak()
}

func actorFKs(ids []string) ([]map[string]string, error) {
	out := []map[string]string{}
	for _, a := range ids {
		if err := checkUUID("actor", a); err != nil {
			return nil, err
		}
		out = append(out, map[string]string{"uuid": a})
	}
	return out, nil
}

// UpdateInterneTaak changes the status or the actoren of an interne taak
// (PATCH; idempotent, so it may be repeated).
func (c *Client) UpdateInterneTaak(ctx context.Context, taak string, u TaakUpdate) (*InterneTaak, error) {
	if err := checkUUID("interne taak", taak); err != nil {
		return nil, err
	}
	body := map[string]any{}
	if u.Status != nil {
		if *u.Status != StatusTeVerwerken && *u.Status != StatusVerwerkt {
			return nil, fmt.Errorf("%w: status %q", ErrInvalidWrite, *u.Status)
		}
		body["status"] = *u.Status
	}
	if u.Actoren != nil {
		actoren, err := actorFKs(u.Actoren)
		if err != nil {
			return nil, err
		}
		body["toegewezenAanActoren"] = actoren
	}
	var out interneTaakWrittenJSON
	if err := c.send(ctx, http.MethodPatch, "/internetaken/"+strings.ToLower(taak), body, &out); err != nil {
		return nil, err
	}
	return out.taak()
}

// InterneTaak reads one interne taak.
func (c *Client) InterneTaak(ctx context.Context, taak string) (*InterneTaak, error) {
	if err := checkUUID("interne taak", taak); err != nil {
		return nil, err
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	var out interneTaakWrittenJSON
	if err := c.get(ctx, c.base+"/internetaken/"+strings.ToLower(taak), &out); err != nil {
		return nil, err
	}
	return out.taak()
}

// OpenInterneTaken returns the interne taken with status te_verwerken
// assigned to the actor with this UUID.
func (c *Client) OpenInterneTaken(ctx context.Context, actor string) ([]InterneTaak, error) {
	if err := checkUUID("actor", actor); err != nil {
		return nil, err
	}
	return c.interneTaken(ctx, url.Values{"toegewezenAanActor__uuid": {strings.ToLower(actor)}, "status": {StatusTeVerwerken}})
}

// OpenInterneTakenFor is OpenInterneTaken for an actor known by its
// identificator; an actor the register does not have has none.
func (c *Client) OpenInterneTakenFor(ctx context.Context, a Actor) ([]InterneTaak, error) {
	soort, ident, err := actorIdentificator(a)
	if err != nil {
		return nil, err
	}
	id, err := c.findActor(ctx, soort, ident)
	if err != nil || id == "" {
		return nil, err
	}
	return c.OpenInterneTaken(ctx, id)
}

func (c *Client) interneTaken(ctx context.Context, v url.Values) ([]InterneTaak, error) {
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	v.Set("pageSize", "100")
	var out []InterneTaak
	err := pages(ctx, c, c.base+"/internetaken?"+v.Encode(), func(t interneTaakWrittenJSON) error {
		tk, err := t.taak()
		if err != nil {
			return err
		}
		out = append(out, *tk)
		return nil
	})
	return out, err
}

// send writes body as JSON with method to path under the API root and
// decodes the answer into out. The bodies hold no BSN, so neither can the
// errors.
func (c *Client) send(ctx context.Context, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: %w: %v", name, ErrInvalidWrite, err)
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	h := http.Header{
		"Authorization": {"Token " + c.token},
		"Accept":        {"application/json"},
		"Content-Type":  {"application/json"},
	}
	_, err = c.http.JSON(ctx, upstream.Request{Method: method, URL: c.base + path, Header: h, Body: b}, out)
	return err
}

func nonEmptyUUID(what, id string) error {
	if !upstream.IsUUID(id) {
		return fmt.Errorf("%s: %s: %w: no uuid", name, what, upstream.ErrBadResponse)
	}
	return nil
}

type klantcontactWrittenJSON struct {
	UUID             string  `json:"uuid"`
	Referentienummer *string `json:"referentienummer"`
	Kanaal           string  `json:"kanaal"`
	Onderwerp        string  `json:"onderwerp"`
}

func (kc klantcontactWrittenJSON) klantcontact() *Klantcontact {
	out := &Klantcontact{UUID: kc.UUID, Kanaal: kc.Kanaal, Onderwerp: kc.Onderwerp}
	if kc.Referentienummer != nil {
		out.Referentienummer = *kc.Referentienummer
	}
	return out
}

type betrokkeneWrittenJSON struct {
	UUID            string  `json:"uuid"`
	WasPartij       *fkJSON `json:"wasPartij"`
	HadKlantcontact fkJSON  `json:"hadKlantcontact"`
}

type actorJSON struct {
	UUID               string                   `json:"uuid"`
	SoortActor         string                   `json:"soortActor"`
	Actoridentificator *objectidentificatorJSON `json:"actoridentificator"`
}

type interneTaakWrittenJSON struct {
	UUID                         string   `json:"uuid"`
	GevraagdeHandeling           string   `json:"gevraagdeHandeling"`
	Toelichting                  string   `json:"toelichting"`
	Status                       string   `json:"status"`
	AanleidinggevendKlantcontact fkJSON   `json:"aanleidinggevendKlantcontact"`
	ToegewezenAanActoren         []fkJSON `json:"toegewezenAanActoren"`
	ToegewezenOp                 string   `json:"toegewezenOp"`
}

func (t interneTaakWrittenJSON) taak() (*InterneTaak, error) {
	if !upstream.IsUUID(t.UUID) {
		return nil, fmt.Errorf("%s: interne taak: %w: no uuid", name, upstream.ErrBadResponse)
	}
	out := &InterneTaak{
		UUID: t.UUID, Klantcontact: t.AanleidinggevendKlantcontact.UUID,
		GevraagdeHandeling: t.GevraagdeHandeling, Toelichting: t.Toelichting, Status: t.Status,
	}
	for _, a := range t.ToegewezenAanActoren {
		out.Actoren = append(out.Actoren, a.UUID)
	}
	if t.ToegewezenOp != "" {
		at, err := time.Parse(time.RFC3339Nano, t.ToegewezenOp)
		if err != nil {
			return nil, fmt.Errorf("%s: interne taak: %w: toegewezenOp is not a date-time", name, upstream.ErrBadResponse)
		}
		out.ToegewezenOp = at.UTC()
	}
	return out, nil
}
