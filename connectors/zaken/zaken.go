// Package zaken is the connector for a municipality's zaakregistratie: the
// ZGW Zaken API (1.5) with the Catalogi API (1.3) that describes its
// zaaktypen, as Open Zaak serves them.
//
// It lists a resident's zaken (the resident as initiator) up to a maximum
// vertrouwelijkheidaanduiding, and resolves each zaak's domain (zaak →
// zaaktype → catalogus.domein) and current status (zaak → status →
// statustype). The listing asks for the status and its statustype expanded
// (Zaken API 1.5), so a zaak's status comes with it; from a source that does
// not expand (an older Zaken API) the connector reads each status itself.
// Zaaktypen, catalogi and statustypen are cached; zaken and statussen never
// are, so with the catalogi cached one listing is one request per page.
// Every request carries a fresh JWT-ZGW token naming the employee. All HTTP
// goes through package upstream, which follows links only under the
// configured base URLs and keeps query strings (they hold the BSN) out of
// errors and logs.
package zaken

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// ErrNotFound is returned by Domain when the zaak does not exist.
var ErrNotFound = errors.New("zaken: not found")

// DefaultCacheTTL is how long zaaktypen, catalogi and statustypen are kept.
const DefaultCacheTTL = 10 * time.Minute

// Config configures a Client.
type Config struct {
	// ZakenURL is the root of the Zaken API, e.g. https://zaken.gemeente.example/zaken/api/v1.
	ZakenURL string
	// CatalogiURL is the root of the Catalogi API its zaaktypen live in.
	CatalogiURL string
	// ClientID and Secret are the JWT-ZGW credentials (HS256).
	ClientID string
	Secret   string
	// HTTP configures timeouts, retries and the breaker; New sets its Name
	// ("zaken") and BaseURLs (ZakenURL and CatalogiURL).
	HTTP upstream.Config
	// CacheTTL is how long a zaaktype, catalogus or statustype is kept; 0
	// means DefaultCacheTTL, a negative value disables the cache.
	CacheTTL time.Duration
}

// User is the employee on whose behalf the connector asks, sent in the
// token as user_id and user_representation so the source can log it.
type User struct{ ID, Representation string }

// Query asks for one resident's zaken.
type Query struct {
	// BSN of the resident: the initiator of the zaken.
	BSN string
	// MaxVertrouwelijkheid is required: one of the eight aanduidingen. The
	// source filters on it and the connector drops what is above it.
	MaxVertrouwelijkheid string
	User                 User
}

// Zaak is a zaak as the gateway shows it.
type Zaak struct {
	UUID, URL, Identificatie, Omschrijving string
	// Zaaktype is the omschrijving of the zaaktype.
	Zaaktype string
	// Domain is the domein of the zaaktype's catalogus (BURZA, SOCZA, KCC...).
	Domain            string
	Vertrouwelijkheid string
	// Status is the omschrijving of the current statustype; "" when none.
	Status string
	// Dates are YYYY-MM-DD, or "" when the source has none.
	Startdatum, Einddatum, EinddatumGepland string
}

// levels ranks the vertrouwelijkheidaanduidingen from least to most restricted.
var levels = map[string]int{
	"openbaar":          1,
	"beperkt_openbaar":  2,
	"intern":            3,
	"zaakvertrouwelijk": 4,
	"vertrouwelijk":     5,
	"confidentieel":     6,
	"geheim":            7,
	"zeer_geheim":       8,
}

// Level ranks a vertrouwelijkheidaanduiding 1 (openbaar) .. 8 (zeer_geheim);
// 0 when unknown.
func Level(v string) int { return levels[v] }

// Query parameters of GET /zaken the connector sets.
const (
	paramBSN  = "rol__betrokkeneIdentificatie__natuurlijkPersoon__inpBsn"
	paramMax  = "maximaleVertrouwelijkheidaanduiding"
	paramPage = "page"
	// paramExpand asks a Zaken API 1.5 to include each zaak's current
	// status and its statustype; older ones ignore it.
	paramExpand  = "expand"
	expandStatus = "status,status.statustype"
)

const (
	// maxPages bounds one listing: a source whose next never ends is broken.
	maxPages = 100
	// parallel bounds the lookups per listing.
	parallel = 8
)

// Client is safe for concurrent use.
type Client struct {
	up       *upstream.Client
	zaken    *url.URL
	clientID string
	secret   []byte
	// now is the caches' clock; tokens always use the wall clock.
	now func() time.Time

	zaaktypen   *upstream.Cache[zaaktype]
	catalogi    *upstream.Cache[catalogus]
	statustypen *upstream.Cache[statustype]
	// tokens are the employees' current JWT-ZGW tokens, on the wall clock.
	tokens *upstream.Cache[string]
}

// sourceName names the source in errors and logs.
const sourceName = "zaken"

// New checks cfg and builds a client; errors name the Config field at
// fault (Config.ZakenURL, ...).
func New(cfg Config) (*Client, error) {
	zu, err := upstream.ParseBaseURL(cfg.ZakenURL)
	if err != nil {
		return nil, fmt.Errorf("zaken: Config.ZakenURL: %w", err)
	}
	if _, err := upstream.ParseBaseURL(cfg.CatalogiURL); err != nil {
		return nil, fmt.Errorf("zaken: Config.CatalogiURL: %w", err)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("zaken: Config.ClientID is empty")
	}
	if cfg.Secret == "" {
		return nil, errors.New("zaken: Config.Secret is empty")
	}
	h := cfg.HTTP
	h.Name = sourceName
	h.BaseURLs = []string{cfg.ZakenURL, cfg.CatalogiURL}
	up, err := upstream.New(h)
	if err != nil {
		return nil, fmt.Errorf("zaken: Config.HTTP: %w", err)
	}
	ttl := cfg.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	c := &Client{up: up, zaken: zu, clientID: cfg.ClientID, secret: []byte(cfg.Secret), now: time.Now,
		tokens: upstream.NewCache[string](sourceName, tokenReuse, time.Now)}
	clock := func() time.Time { return c.now() }
	c.zaaktypen = upstream.NewCache[zaaktype](sourceName, ttl, clock)
	c.catalogi = upstream.NewCache[catalogus](sourceName, ttl, clock)
	c.statustypen = upstream.NewCache[statustype](sourceName, ttl, clock)
	return c, nil
}

// Zaken lists the zaken the resident initiated, at most
// q.MaxVertrouwelijkheid, each with its domain and current status, in the
// order the source lists them. A resident the source does not know has no
// zaken: nil, nil.
//
// Errors: an invalid query, no request made (bsn.ErrInvalid for the BSN);
// errors matching upstream.ErrUnavailable, ErrTimeout, ErrCircuitOpen,
// ErrRejected, ErrBadResponse or ErrForeignLink (a link outside the
// configured base URLs, which is never requested); context.Canceled. No
// error holds a BSN.
func (c *Client) Zaken(ctx context.Context, q Query) ([]Zaak, error) {
	out, err := c.fetchZaken(ctx, q)
	if err != nil {
		return nil, bsn.RedactError(err)
	}
	return out, nil
}

func (c *Client) fetchZaken(ctx context.Context, q Query) ([]Zaak, error) {
	if err := bsn.Check(q.BSN); err != nil {
		return nil, fmt.Errorf("zaken: invalid query: %w", err)
	}
	maxLevel := Level(q.MaxVertrouwelijkheid)
	if maxLevel == 0 {
		// The value is not repeated: a caller's mix-up must not put a BSN in an error.
		return nil, errors.New("zaken: invalid query: MaxVertrouwelijkheid is not one of the eight vertrouwelijkheidaanduidingen")
	}
	ctx, cancel := c.up.Bound(ctx)
	defer cancel()

	raw, err := c.list(ctx, q)
	if err != nil {
		return nil, err
	}
	// Defense in depth: whatever the source answered, nothing above the
	// maximum or of unknown confidentiality is used, nor even resolved.
	var kept []zaakJSON
	for _, z := range raw {
		if l := Level(z.Vertrouwelijkheidaanduiding); l != 0 && l <= maxLevel {
			kept = append(kept, z)
		}
	}
	if len(kept) == 0 {
		return nil, nil
	}
	out := make([]Zaak, len(kept))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, z := range kept {
		g.Go(func() error {
			zk, err := c.resolve(gctx, z, q.User)
			out[i] = zk
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// list reads every page of the resident's zaken, each zaak once.
func (c *Client) list(ctx context.Context, q Query) ([]zaakJSON, error) {
	filter := url.Values{paramBSN: {q.BSN}, paramMax: {q.MaxVertrouwelijkheid}}
	first := *c.zaken
	first.Path += "/zaken"
	params := url.Values{paramExpand: {expandStatus}}
	maps.Copy(params, filter)
	first.RawQuery = params.Encode()

	var all []zaakJSON
	seen := map[string]bool{}
	err := upstream.Pages(ctx, c.up, first.String(),
		func(ctx context.Context, link string, page *upstream.ListPage[zaakJSON]) error {
			return c.get(ctx, link, q.User, true, page)
		},
		func(z zaakJSON) error {
			if err := z.check(); err != nil {
				return err
			}
			if !seen[z.UUID] { // else a zaak that moved to a later page while paging
				seen[z.UUID] = true
				all = append(all, z)
			}
			return nil
		},
		upstream.PageOptions{MaxPages: maxPages, CheckNext: func(link string) error { return samePaging(link, &first, filter) }},
	)
	if err != nil {
		return nil, err
	}
	return all, nil
}

// samePaging checks that a next link is the same listing with the same
// filters, only another page: a link that dropped the BSN filter would list
// other residents' zaken. It may keep or drop the expand the first asked
// for (each zaak is then resolved by what its page holds), not change it.
func samePaging(link string, first *url.URL, filter url.Values) error {
	u, err := url.Parse(link)
	if err != nil || u.Path != first.Path {
		return fmt.Errorf("zaken: %w: next link leaves the listing", upstream.ErrBadResponse)
	}
	q := u.Query()
	for k, v := range filter {
		if len(q[k]) != 1 || q[k][0] != v[0] {
			return fmt.Errorf("zaken: %w: next link changes the filter %s", upstream.ErrBadResponse, k)
		}
	}
	if ex, ok := q[paramExpand]; ok && (len(ex) != 1 || ex[0] != expandStatus) {
		return fmt.Errorf("zaken: %w: next link changes the parameter %s", upstream.ErrBadResponse, paramExpand)
	}
	for k := range q {
		if _, ok := filter[k]; !ok && k != paramPage && k != paramExpand {
			return fmt.Errorf("zaken: %w: next link adds the parameter %s", upstream.ErrBadResponse, k)
		}
	}
	return nil
}

// resolve adds the zaaktype, domain and status to a listed zaak.
func (c *Client) resolve(ctx context.Context, z zaakJSON, u User) (Zaak, error) {
	zt, cat, err := c.zaaktypeAndCatalogus(ctx, z.Zaaktype, u)
	if err != nil {
		return Zaak{}, err
	}
	out := Zaak{
		UUID:              z.UUID,
		URL:               z.URL,
		Identificatie:     z.Identificatie,
		Omschrijving:      z.Omschrijving,
		Zaaktype:          zt.Omschrijving,
		Domain:            cat.Domein,
		Vertrouwelijkheid: z.Vertrouwelijkheidaanduiding,
		Startdatum:        z.Startdatum,
		Einddatum:         deref(z.Einddatum),
		EinddatumGepland:  deref(z.EinddatumGepland),
	}
	if z.Status != nil && *z.Status != "" {
		st, err := c.currentStatus(ctx, z, u)
		if err != nil {
			return Zaak{}, err
		}
		out.Status = st
	}
	return out, nil
}

// currentStatus is the omschrijving of the statustype of the zaak's current
// status: from the listing's _expand when the source included the status
// (and its statustype), else by reading the status (and the cached
// statustype). An inclusion is only used for the resource the zaak links,
// and its links are held to the configured base URLs as if followed.
func (c *Client) currentStatus(ctx context.Context, z zaakJSON, u User) (string, error) {
	var st statusJSON
	if x := z.Expand; x != nil && x.Status != nil && x.Status.URL == *z.Status {
		if _, err := c.up.Follow(*z.Status); err != nil {
			return "", err
		}
		st = x.Status.statusJSON
	} else if err := c.get(ctx, *z.Status, u, false, &st); err != nil {
		return "", err
	}
	if st.Statustype == "" {
		return "", fmt.Errorf("zaken: %w: status without statustype", upstream.ErrBadResponse)
	}
	if x := st.Expand; x != nil && x.Statustype != nil && x.Statustype.URL == st.Statustype {
		if _, err := c.up.Follow(st.Statustype); err != nil {
			return "", err
		}
		if err := x.Statustype.check(); err != nil {
			return "", err
		}
		return x.Statustype.Omschrijving, nil
	}
	stt, err := lookUp(ctx, c, c.statustypen, st.Statustype, u)
	if err != nil {
		return "", err
	}
	return stt.Omschrijving, nil
}

// Domain resolves the domain of one zaak (for a klantcontact that links
// it): the domein of its zaaktype's catalogus.
//
// Errors: ErrNotFound when the zaak does not exist (or zaakUUID is no UUID,
// in which case no request is made); otherwise as Zaken.
func (c *Client) Domain(ctx context.Context, zaakUUID string, u User) (string, error) {
	d, err := c.domain(ctx, zaakUUID, u)
	if err != nil {
		return "", bsn.RedactError(err)
	}
	return d, nil
}

func (c *Client) domain(ctx context.Context, zaakUUID string, u User) (string, error) {
	if !upstream.IsUUID(zaakUUID) {
		return "", fmt.Errorf("%w: zaak id is no UUID", ErrNotFound)
	}
	ctx, cancel := c.up.Bound(ctx)
	defer cancel()
	var z zaakJSON
	if err := c.get(ctx, c.zaken.String()+"/zaken/"+zaakUUID, u, true, &z); err != nil {
		if se, ok := errors.AsType[*upstream.StatusError](err); ok && se.Status == http.StatusNotFound {
			return "", fmt.Errorf("%w: zaak %s", ErrNotFound, zaakUUID)
		}
		return "", err
	}
	if err := z.check(); err != nil {
		return "", err
	}
	_, cat, err := c.zaaktypeAndCatalogus(ctx, z.Zaaktype, u)
	if err != nil {
		return "", err
	}
	return cat.Domein, nil
}

// zaaktypeAndCatalogus follows zaak.zaaktype → zaaktype.catalogus, both cached.
func (c *Client) zaaktypeAndCatalogus(ctx context.Context, link string, u User) (zaaktype, catalogus, error) {
	zt, err := lookUp(ctx, c, c.zaaktypen, link, u)
	if err != nil {
		return zaaktype{}, catalogus{}, err
	}
	cat, err := lookUp(ctx, c, c.catalogi, zt.Catalogus, u)
	if err != nil {
		return zaaktype{}, catalogus{}, err
	}
	return zt, cat, nil
}

// catalogiResource is a resource of the Catalogi API the connector caches.
type catalogiResource interface {
	zaaktype | catalogus | statustype
	check() error
}

// lookUp reads the Catalogi resource at link through cache: zaaktypen,
// catalogi and statustypen change rarely and many zaken share them.
func lookUp[V catalogiResource](ctx context.Context, c *Client, cache *upstream.Cache[V], link string, u User) (V, error) {
	var zero V
	target, err := c.up.Follow(link)
	if err != nil {
		return zero, err
	}
	return cache.Get(ctx, target, func(ctx context.Context) (V, error) {
		var v V
		if err := c.get(ctx, target, u, false, &v); err != nil {
			return zero, err
		}
		if err := v.check(); err != nil {
			return zero, err
		}
		return v, nil
	})
}

// get reads one resource with the employee's token. geo resources (zaken) need the
// CRS headers: Open Zaak answers 412 without Accept-Crs, and the spec also
// requires Content-Crs on these GETs.
func (c *Client) get(ctx context.Context, link string, u User, geo bool, out any) error {
	tok, err := c.tokenFor(ctx, u)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	h.Set("Accept", "application/json")
	if geo {
		h.Set("Accept-Crs", "EPSG:4326")
		h.Set("Content-Crs", "EPSG:4326")
	}
	_, err = c.up.JSON(ctx, upstream.Request{Method: http.MethodGet, URL: link, Header: h, Idempotent: true}, out)
	return err
}

// Wire types: the fields the connector reads.

type zaakJSON struct {
	URL                         string  `json:"url"`
	UUID                        string  `json:"uuid"`
	Identificatie               string  `json:"identificatie"`
	Omschrijving                string  `json:"omschrijving"`
	Zaaktype                    string  `json:"zaaktype"`
	Vertrouwelijkheidaanduiding string  `json:"vertrouwelijkheidaanduiding"`
	Startdatum                  string  `json:"startdatum"`
	Einddatum                   *string `json:"einddatum"`
	EinddatumGepland            *string `json:"einddatumGepland"`
	Status                      *string `json:"status"`
	// Expand is what a Zaken API 1.5 included; nil from one that did not.
	Expand *zaakExpand `json:"_expand"`
}

// zaakExpand is the _expand of a zaak listed with expandStatus.
type zaakExpand struct {
	Status *expandedStatus `json:"status"`
}

type expandedStatus struct {
	URL string `json:"url"`
	statusJSON
}

// check refuses a zaak the connector cannot place.
func (z zaakJSON) check() error {
	if z.UUID == "" || z.Zaaktype == "" {
		return fmt.Errorf("zaken: %w: zaak without uuid or zaaktype", upstream.ErrBadResponse)
	}
	for _, d := range []*string{&z.Startdatum, z.Einddatum, z.EinddatumGepland} {
		if d != nil && *d != "" {
			if _, err := time.Parse(time.DateOnly, *d); err != nil {
				return fmt.Errorf("zaken: %w: zaak with a date that is no YYYY-MM-DD", upstream.ErrBadResponse)
			}
		}
	}
	return nil
}

type statusJSON struct {
	Statustype string `json:"statustype"`
	// Expand holds the statustype when the status is itself an inclusion.
	Expand *struct {
		Statustype *statustype `json:"statustype"`
	} `json:"_expand"`
}

type zaaktype struct {
	Omschrijving string `json:"omschrijving"`
	Catalogus    string `json:"catalogus"`
}

func (zt zaaktype) check() error {
	if zt.Catalogus == "" || zt.Omschrijving == "" {
		return fmt.Errorf("zaken: %w: zaaktype without catalogus or omschrijving", upstream.ErrBadResponse)
	}
	return nil
}

type catalogus struct {
	Domein string `json:"domein"`
}

// check refuses a catalogus without domein: a zaak without a domain cannot
// be placed by the policy, and must not be shown under no domain.
func (cat catalogus) check() error {
	if cat.Domein == "" {
		return fmt.Errorf("zaken: %w: catalogus without domein", upstream.ErrBadResponse)
	}
	return nil
}

type statustype struct {
	URL          string `json:"url"`
	Omschrijving string `json:"omschrijving"`
}

func (st statustype) check() error {
	if st.Omschrijving == "" {
		return fmt.Errorf("zaken: %w: statustype without omschrijving", upstream.ErrBadResponse)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
