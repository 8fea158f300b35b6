// Package klantinteracties is the client of the Klantinteracties API (Open
// Klant 2), the Common Ground register of a resident's contacts on every
// channel. It finds the resident's partij by BSN and, at the same time, the
// klantcontacten of the partij with that BSN, with the zaken they were
// about and the interne taken they led to; a contact counts only when the
// partij look-up vouches for it.
//
// All HTTP goes through connectors/upstream: one budget per call, retried
// idempotent reads, a circuit breaker, and next links followed only under the
// configured URL. Errors match the upstream sentinels (errors.Is) plus
// bsn.ErrInvalid, and never contain a BSN, which the API takes in a query
// string.
package klantinteracties

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// name is the source's name in errors and logs.
const name = "klantinteracties"

// Config configures a Client.
type Config struct {
	// URL is the API root, e.g.
	// https://openklant.gemeente.example/klantinteracties/api/v1.
	URL string
	// Token is sent as "Authorization: Token <Token>".
	Token string
	// HTTP tunes the shared plumbing; New sets its Name ("klantinteracties")
	// and BaseURLs ([URL]).
	HTTP upstream.Config
}

// Client reads contacts from one Klantinteracties API. It is safe for
// concurrent use.
type Client struct {
	http  *upstream.Client
	base  string // URL without a trailing slash
	token string
}

// New checks cfg; its errors name the Config field at fault (Config.URL,
// Config.Token).
func New(cfg Config) (*Client, error) {
	base, err := upstream.ParseBaseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("klantinteracties: Config.URL: %w", err)
	}
	if strings.TrimSpace(cfg.Token) == "" || strings.ContainsAny(cfg.Token, " \t\r\n") {
		return nil, errors.New("klantinteracties: Config.Token: want a non-empty token without spaces")
	}
	hc := cfg.HTTP
	hc.Name = name
	hc.BaseURLs = []string{base.String()}
	u, err := upstream.New(hc)
	if err != nil {
		return nil, fmt.Errorf("klantinteracties: Config.HTTP: %w", err)
	}
	return &Client{http: u, base: base.String(), token: cfg.Token}, nil
}

// Query asks for the contacts of one resident.
type Query struct {
	BSN string
	// IncludeVertrouwelijk false asks the source for vertrouwelijk=false and
	// also drops any vertrouwelijk contact that still comes back.
	IncludeVertrouwelijk bool
}

// Contact is one klantcontact.
type Contact struct {
	UUID, Kanaal, Onderwerp, Inhoud string
	Vertrouwelijk                   bool
	// At is plaatsgevondenOp, in UTC.
	At time.Time
	// Zaken are the UUIDs of the zaken the contact was about (its
	// onderwerpobjecten of codeObjecttype "zaak"); nil when none.
	Zaken []string
	// Taken are the interne taken the contact led to; nil when none.
	Taken []Taak
}

// Taak is an interne taak.
type Taak struct{ UUID, GevraagdeHandeling, Status string }

// Contacts returns the resident's contacts, newest first, from every partij
// that carries the BSN as its partij-identificator (without duplicates).
// It returns nil, nil when no partij has the BSN, and an empty, non-nil
// slice for a partij without (permitted) contacts.
//
// Errors: bsn.ErrInvalid before any request; otherwise errors matching
// upstream.ErrRejected (4xx, e.g. a wrong token), ErrUnavailable,
// ErrTimeout, ErrCircuitOpen, ErrBadResponse (not JSON, a field missing or
// malformed, a zaak reference that is no UUID, a next link loop) and
// ErrForeignLink (a link outside URL, never requested), or the context's
// error. No error holds a BSN.
func (c *Client) Contacts(ctx context.Context, q Query) ([]Contact, error) {
	if err := bsn.Check(q.BSN); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	out, err := c.contacts(ctx, q)
	if err != nil {
		return nil, bsn.RedactError(err)
	}
	return out, nil
}

// contacts asks, in parallel, for the partijen that carry the BSN and for
// the klantcontacten of any partij that carries it (the identificator
// filters of /klantcontacten), so a view waits for one round trip instead
// of two. The partijen then vouch for the contacts: only a contact with a
// betrokkene that was one of them is kept, so a source that ignores a
// filter still hands out no one else's contacts.
func (c *Client) contacts(ctx context.Context, q Query) ([]Contact, error) {
	var (
		partijen []string
		listed   []klantcontactJSON
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		partijen, err = c.partijen(gctx, q.BSN)
		return err
	})
	g.Go(func() error {
		v := url.Values{
			"hadBetrokkene__wasPartij__partijIdentificator__codeObjecttype":    {"natuurlijk_persoon"},
			"hadBetrokkene__wasPartij__partijIdentificator__codeSoortObjectId": {"bsn"},
			"hadBetrokkene__wasPartij__partijIdentificator__codeRegister":      {"brp"},
			"hadBetrokkene__wasPartij__partijIdentificator__objectId":          {q.BSN},
			"expand":   {"gingOverOnderwerpobjecten,leiddeTotInterneTaken,hadBetrokkenen"},
			"pageSize": {"100"},
		}
		if !q.IncludeVertrouwelijk {
			v.Set("vertrouwelijk", "false")
		}
		return pages(gctx, c, c.base+"/klantcontacten?"+v.Encode(), func(kc klantcontactJSON) error {
			listed = append(listed, kc)
			return nil
		})
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if len(partijen) == 0 {
		return nil, nil // whatever the contacts listing said: nobody vouches for them
	}
	out := []Contact{}
	seen := map[string]bool{}
	for _, kc := range listed {
		// Defense in depth: a source that ignores the filter must not
		// leak what the caller may not see. A contact without
		// vertrouwelijk is not guessed to be open: contact rejects it.
		if kc.Vertrouwelijk != nil && *kc.Vertrouwelijk && !q.IncludeVertrouwelijk || kc.UUID != "" && seen[kc.UUID] {
			continue
		}
		contact, ours, err := c.contact(ctx, kc, partijen)
		if err != nil {
			return nil, err
		}
		if !ours {
			// Someone else's contact: a source that ignored the
			// identificator filter must not show it to this resident's
			// viewer.
			continue
		}
		seen[contact.UUID] = true
		out = append(out, contact)
	}
	slices.SortStableFunc(out, func(a, b Contact) int {
		if n := b.At.Compare(a.At); n != 0 {
			return n
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	return out, nil
}

// partijen are the UUIDs of the partijen identified by burgerservicenummer.
// A partij the source returns without that BSN among its identificatoren is
// ignored: a source that ignored the filter would otherwise hand out someone
// else's contacts.
func (c *Client) partijen(ctx context.Context, burgerservicenummer string) ([]string, error) {
	v := url.Values{
		"partijIdentificator__codeObjecttype":    {"natuurlijk_persoon"},
		"partijIdentificator__codeSoortObjectId": {"bsn"},
		"partijIdentificator__codeRegister":      {"brp"},
		"partijIdentificator__objectId":          {burgerservicenummer},
		"pageSize":                               {"100"},
	}
	var out []string
	err := pages(ctx, c, c.base+"/partijen?"+v.Encode(), func(p partijJSON) error {
		if p.UUID == "" {
			return fmt.Errorf("%s: partij: %w: no uuid", name, upstream.ErrBadResponse)
		}
		for _, id := range p.PartijIdentificatoren {
			pi := id.PartijIdentificator
			if strings.EqualFold(pi.CodeSoortObjectID, "bsn") && pi.ObjectID == burgerservicenummer && !slices.Contains(out, p.UUID) {
				out = append(out, p.UUID)
				break
			}
		}
		return nil
	})
	return out, err
}

// contact converts one klantcontact, fetching the betrokkenen,
// onderwerpobjecten and interne taken the source did not expand: a
// contact's zaak decides its domain, so a missing one must not go
// unnoticed. ours says whether one of partijen was among its betrokkenen.
func (c *Client) contact(ctx context.Context, kc klantcontactJSON, partijen []string) (_ Contact, ours bool, _ error) {
	contact, err := c.convert(ctx, kc)
	if err != nil {
		return Contact{}, false, err
	}
	betrokkenen, err := complete(ctx, c, "betrokkene", kc.Expand.HadBetrokkenen, kc.HadBetrokkenen,
		func(b betrokkeneJSON) string { return b.UUID })
	if err != nil {
		return Contact{}, false, err
	}
	for _, b := range betrokkenen {
		if b.WasPartij != nil && slices.Contains(partijen, b.WasPartij.UUID) {
			return contact, true, nil
		}
	}
	return Contact{}, false, nil
}

func (c *Client) convert(ctx context.Context, kc klantcontactJSON) (Contact, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: klantcontact %.36q: %w: "+format, append([]any{name, kc.UUID, upstream.ErrBadResponse}, args...)...)
	}
	if kc.UUID == "" {
		return Contact{}, bad("no uuid")
	}
	if kc.Vertrouwelijk == nil {
		return Contact{}, bad("no vertrouwelijk")
	}
	if kc.PlaatsgevondenOp == nil {
		return Contact{}, bad("no plaatsgevondenOp")
	}
	at, err := time.Parse(time.RFC3339Nano, *kc.PlaatsgevondenOp)
	if err != nil {
		return Contact{}, bad("plaatsgevondenOp is not an RFC 3339 date-time")
	}
	out := Contact{
		UUID: kc.UUID, Kanaal: kc.Kanaal, Onderwerp: kc.Onderwerp, Inhoud: kc.Inhoud,
		Vertrouwelijk: *kc.Vertrouwelijk, At: at.UTC(),
	}

	// What the source expanded, then what it only linked to.
	objecten, err := complete(ctx, c, "onderwerpobject", kc.Expand.GingOverOnderwerpobjecten, kc.GingOverOnderwerpobjecten,
		func(o onderwerpobjectJSON) string { return o.UUID })
	if err != nil {
		return Contact{}, err
	}
	for _, o := range objecten {
		zaak, isZaak, err := zaakUUID(o.Onderwerpobjectidentificator)
		if err != nil {
			return Contact{}, bad("onderwerpobject %.36q: %v", o.UUID, err)
		}
		if isZaak && !slices.Contains(out.Zaken, zaak) {
			out.Zaken = append(out.Zaken, zaak)
		}
	}
	taken, err := complete(ctx, c, "interne taak", kc.Expand.LeiddeTotInterneTaken, kc.LeiddeTotInterneTaken,
		func(t interneTaakJSON) string { return t.UUID })
	if err != nil {
		return Contact{}, err
	}
	for _, t := range taken {
		if t.UUID == "" {
			return Contact{}, bad("interne taak without uuid")
		}
		out.Taken = append(out.Taken, Taak(t))
	}
	return out, nil
}

// complete returns the expanded objects followed by those only referred to,
// fetched one by one: a source that does not expand must not make a
// contact lose its zaak.
func complete[T any](ctx context.Context, c *Client, what string, expanded []T, refs []fkJSON, id func(T) string) ([]T, error) {
	out := slices.Clone(expanded)
	have := map[string]bool{}
	for _, o := range expanded {
		have[id(o)] = true
	}
	for _, ref := range refs {
		if have[ref.UUID] {
			continue
		}
		if ref.URL == "" {
			return nil, fmt.Errorf("%s: %s %.36q: %w: no url", name, what, ref.UUID, upstream.ErrBadResponse)
		}
		var o T
		if err := c.get(ctx, ref.URL, &o); err != nil {
			return nil, err
		}
		have[ref.UUID] = true
		out = append(out, o)
	}
	return out, nil
}

// zaakUUID reads the zaak an onderwerpobject identifies: its UUID, or the
// last segment of its URL. Another codeObjecttype is no zaak; a zaak that
// cannot be identified is an error, since guessing "no zaak" would make the
// contact domain-free.
func zaakUUID(id *objectidentificatorJSON) (string, bool, error) {
	if id == nil || !strings.EqualFold(strings.TrimSpace(id.CodeObjecttype), "zaak") {
		return "", false, nil
	}
	v := strings.TrimSpace(id.ObjectID)
	if strings.Contains(v, "/") {
		v = v[strings.LastIndex(strings.TrimRight(v, "/"), "/")+1:]
		v = strings.TrimRight(v, "/")
	}
	if !upstream.IsUUID(v) {
		return "", false, errors.New("zaak objectId is no UUID or zaak URL")
	}
	return strings.ToLower(v), true, nil
}

// pages reads a paginated list from first, following next links, and calls
// each for every result.
func pages[T any](ctx context.Context, c *Client, first string, each func(T) error) error {
	return upstream.Pages(ctx, c.http, first,
		func(ctx context.Context, link string, page *upstream.ListPage[T]) error {
			return c.get(ctx, link, page)
		},
		each, upstream.PageOptions{})
}

// get reads one JSON resource; link must lie under the configured URL
// (upstream checks it before anything is sent).
func (c *Client) get(ctx context.Context, link string, out any) error {
	h := http.Header{"Authorization": {"Token " + c.token}, "Accept": {"application/json"}}
	_, err := c.http.JSON(ctx, upstream.Request{Method: http.MethodGet, URL: link, Header: h, Idempotent: true}, out)
	return err
}

// JSON shapes read from the API: only the fields used. Pointers tell a
// missing field from a zero value where that matters.

type fkJSON struct {
	UUID string `json:"uuid"`
	URL  string `json:"url"`
}

type partijJSON struct {
	UUID                  string `json:"uuid"`
	PartijIdentificatoren []struct {
		PartijIdentificator struct {
			CodeObjecttype    string `json:"codeObjecttype"`
			CodeSoortObjectID string `json:"codeSoortObjectId"`
			ObjectID          string `json:"objectId"`
			CodeRegister      string `json:"codeRegister"`
		} `json:"partijIdentificator"`
	} `json:"partijIdentificatoren"`
}

type klantcontactJSON struct {
	UUID                      string   `json:"uuid"`
	Kanaal                    string   `json:"kanaal"`
	Onderwerp                 string   `json:"onderwerp"`
	Inhoud                    string   `json:"inhoud"`
	Vertrouwelijk             *bool    `json:"vertrouwelijk"`
	PlaatsgevondenOp          *string  `json:"plaatsgevondenOp"`
	GingOverOnderwerpobjecten []fkJSON `json:"gingOverOnderwerpobjecten"`
	LeiddeTotInterneTaken     []fkJSON `json:"leiddeTotInterneTaken"`
	HadBetrokkenen            []fkJSON `json:"hadBetrokkenen"`
	Expand                    struct {
		GingOverOnderwerpobjecten []onderwerpobjectJSON `json:"gingOverOnderwerpobjecten"`
		LeiddeTotInterneTaken     []interneTaakJSON     `json:"leiddeTotInterneTaken"`
		HadBetrokkenen            []betrokkeneJSON      `json:"hadBetrokkenen"`
	} `json:"_expand"`
}

type betrokkeneJSON struct {
	UUID      string  `json:"uuid"`
	WasPartij *fkJSON `json:"wasPartij"`
}

type onderwerpobjectJSON struct {
	UUID                         string                   `json:"uuid"`
	Onderwerpobjectidentificator *objectidentificatorJSON `json:"onderwerpobjectidentificator"`
}

type objectidentificatorJSON struct {
	ObjectID          string `json:"objectId"`
	CodeObjecttype    string `json:"codeObjecttype"`
	CodeRegister      string `json:"codeRegister"`
	CodeSoortObjectID string `json:"codeSoortObjectId"`
}

type interneTaakJSON struct {
	UUID               string `json:"uuid"`
	GevraagdeHandeling string `json:"gevraagdeHandeling"`
	Status             string `json:"status"`
}
