// Package brp is the client of the BRP API Personen v2 (Haal Centraal), the
// Dutch population register: it asks for one person by burgerservicenummer
// with exactly the fields the caller permits, over the shared upstream
// plumbing (timeout, retries of this read, circuit breaker, trace context).
//
// The burgerservicenummer travels only in the POST body; it never appears in
// a URL, an error or a log line of this package.
package brp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// ErrFields is returned, without calling the BRP, for a request with no
// fields, a malformed field path or a field the BRP delivers by itself
// (geheimhoudingPersoonsgegevens, inOnderzoek, opschortingBijhouding, rni,
// verificatie, indicatieVastgesteldVerblijftNietOpAdres, at any depth),
// which the BRP API refuses to be asked for.
var ErrFields = errors.New("brp: fields not allowed")

// Config configures a Client.
type Config struct {
	// URL is the API's base URL, e.g.
	// https://proefomgeving.haalcentraal.nl/haalcentraal/api/brp.
	URL string
	// APIKey is sent as X-API-KEY (the test environment's authentication).
	APIKey string
	// HTTP tunes the connection; New sets its Name ("brp") and BaseURLs ([URL]).
	HTTP upstream.Config
}

// Client asks the BRP for persons. It is safe for concurrent use.
type Client struct {
	personen string // URL of the personen resource
	apiKey   string
	up       *upstream.Client
}

// sourceName names the source in upstream errors and logs.
const sourceName = "brp"

// New checks cfg; an error names the Config field that is missing or wrong
// (Config.URL, Config.APIKey).
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("brp: Config.URL is empty")
	}
	if cfg.APIKey == "" {
		return nil, errors.New("brp: Config.APIKey is empty")
	}
	base, err := upstream.ParseBaseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("brp: Config.URL: %w", err)
	}
	hc := cfg.HTTP
	hc.Name = sourceName
	hc.BaseURLs = []string{base.String()}
	up, err := upstream.New(hc)
	if err != nil {
		return nil, fmt.Errorf("brp: Config.HTTP: %w", err)
	}
	return &Client{personen: base.String() + "/personen", apiKey: cfg.APIKey, up: up}, nil
}

// Person is one person as the BRP returned it.
type Person struct {
	// Data is the Persoon object in the v2 shape: the requested fields and
	// what the BRP adds by itself.
	Data map[string]any
	// Geheimhouding is geheimhoudingPersoonsgegevens: the person's data may
	// not be given to third parties.
	Geheimhouding bool
	// Opschorting is opschortingBijhouding.reden.code, why the municipality
	// stopped keeping the person's registration: "O" deceased, "E"
	// emigrated, "M" ministerieel besluit, "R" registered in the RNI; ""
	// when the registration is kept up.
	Opschorting string
}

const queryType = "RaadpleegMetBurgerservicenummer"

type query struct {
	Type                string   `json:"type"`
	Burgerservicenummer []string `json:"burgerservicenummer"`
	Fields              []string `json:"fields"`
}

type answer struct {
	Type     string            `json:"type"`
	Personen []json.RawMessage `json:"personen"`
}

// Person asks the BRP for the person with the given burgerservicenummer and
// fields (paths like "naam" or "verblijfplaats.verblijfadres.postcode").
//
// It returns (nil, nil) when the BRP does not know the BSN. Errors:
// ErrFields (no request made); bsn.ErrInvalid for a burgerservicenummer
// that is not nine digits passing the 11-proef (no request made);
// upstream.ErrRejected for a 4xx, with the BRP's invalidParams for a 400;
// upstream.ErrUnavailable, ErrTimeout, ErrCircuitOpen;
// upstream.ErrBadResponse for an answer that is not a
// RaadpleegMetBurgerservicenummer answer about at most this one person. No
// error holds a BSN.
func (c *Client) Person(ctx context.Context, burgerservicenummer string, fields []string) (*Person, error) {
	p, err := c.person(ctx, burgerservicenummer, fields)
	if err != nil {
		return nil, bsn.RedactError(err)
	}
	return p, nil
}

func (c *Client) person(ctx context.Context, burgerservicenummer string, fields []string) (*Person, error) {
	if err := bsn.Check(burgerservicenummer); err != nil {
		return nil, fmt.Errorf("brp: %w", err)
	}
	if err := checkFields(fields); err != nil {
		return nil, err
	}
	body, err := json.Marshal(query{Type: queryType, Burgerservicenummer: []string{burgerservicenummer}, Fields: fields})
	if err != nil {
		return nil, fmt.Errorf("brp: encoding the query: %w", err)
	}
	ctx, cancel := c.up.Bound(ctx)
	defer cancel()
	var ans answer
	_, err = c.up.JSON(ctx, upstream.Request{
		Method: http.MethodPost,
		URL:    c.personen,
		Header: http.Header{
			"X-Api-Key":    {c.apiKey},
			"Content-Type": {"application/json"},
			"Accept":       {"application/json"},
		},
		Body:       body,
		Idempotent: true, // a read, though it is a POST
	}, &ans)
	if err != nil {
		return nil, rejection(err)
	}
	return personFrom(ans, burgerservicenummer)
}

// personFrom checks that the answer is about the asked person.
func personFrom(ans answer, burgerservicenummer string) (*Person, error) {
	if ans.Type != queryType {
		return nil, badResponse("answer type is not %s", queryType)
	}
	switch len(ans.Personen) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, badResponse("%d persons for one burgerservicenummer", len(ans.Personen))
	}
	var data map[string]any
	if err := upstream.DecodeJSON(ans.Personen[0], &data); err != nil || data == nil {
		return nil, badResponse("person is not an object")
	}
	if got, ok := data["burgerservicenummer"]; ok && got != burgerservicenummer {
		return nil, badResponse("the person has another burgerservicenummer")
	}
	p := &Person{Data: data}
	if g, ok := data["geheimhoudingPersoonsgegevens"]; ok {
		if p.Geheimhouding, ok = g.(bool); !ok {
			return nil, badResponse("geheimhoudingPersoonsgegevens is not a boolean")
		}
	}
	if o, ok := data["opschortingBijhouding"]; ok {
		om, _ := o.(map[string]any)
		reden, _ := om["reden"].(map[string]any)
		code, _ := reden["code"].(string)
		if code == "" {
			return nil, badResponse("opschortingBijhouding without reden.code")
		}
		p.Opschorting = code
	}
	return p, nil
}

// badResponse never includes values of the answer: they are personal data.
func badResponse(format string, args ...any) error {
	return fmt.Errorf("brp: %w: %s", upstream.ErrBadResponse, fmt.Sprintf(format, args...))
}

// rejection adds the BRP's invalidParams to the error of a 400, so that a
// refused field is named. Should the BRP quote a BSN, the kept body already
// has it masked, and Person redacts the message again.
func rejection(err error) error {
	se, ok := errors.AsType[*upstream.StatusError](err)
	if !ok || se.Status != http.StatusBadRequest {
		return err
	}
	var fout struct {
		InvalidParams []struct {
			Name   string `json:"name"`
			Code   string `json:"code"`
			Reason string `json:"reason"`
		} `json:"invalidParams"`
	}
	if json.Unmarshal(se.Body, &fout) != nil || len(fout.InvalidParams) == 0 {
		return err
	}
	parts := make([]string, 0, len(fout.InvalidParams))
	for _, ip := range fout.InvalidParams {
		parts = append(parts, fmt.Sprintf("%s: %s (%s)", ip.Name, ip.Reason, ip.Code))
	}
	summary := strings.Join(parts, "; ")
	if len(summary) > 500 {
		summary = summary[:500] + "…"
	}
	return fmt.Errorf("%w: %s", err, summary)
}

// maxFields is the spec's maxItems for fields.
const maxFields = 130

// checkFields refuses what the BRP would refuse anyway, before sending
// anything. Whether a well-formed path exists is left to the BRP, whose
// field list grows with its versions; it answers 400 (ErrRejected).
func checkFields(fields []string) error {
	if len(fields) == 0 {
		return fmt.Errorf("%w: no fields", ErrFields)
	}
	if len(fields) > maxFields {
		return fmt.Errorf("%w: %d fields, at most %d", ErrFields, len(fields), maxFields)
	}
	for i, f := range fields {
		if len(f) > 200 {
			return fmt.Errorf("%w: fields[%d] is longer than 200", ErrFields, i)
		}
		for seg := range strings.SplitSeq(f, ".") {
			if !isFieldName(seg) {
				return fmt.Errorf("%w: fields[%d] is not a field path", ErrFields, i)
			}
			if isAutoDelivered(seg) {
				return fmt.Errorf("%w: fields[%d] %q is delivered automatically", ErrFields, i, f)
			}
		}
	}
	return nil
}

// isFieldName reports whether seg is one name of a field path: the spec's
// Field pattern [a-zA-Z0-9._] split at the dots, no name empty.
func isFieldName(seg string) bool {
	if seg == "" {
		return false
	}
	for _, r := range seg {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// isAutoDelivered reports whether name is a field the BRP API adds by itself
// and refuses in fields, at any depth (naam.inOnderzoek, ...).
func isAutoDelivered(name string) bool {
	switch name {
	case "geheimhoudingPersoonsgegevens", "inOnderzoek", "opschortingBijhouding", "rni", "verificatie",
		"indicatieVastgesteldVerblijftNietOpAdres":
		return true
	}
	return false
}
