// Package connectors_test checks what every connector promises alike: an
// invalid BSN is bsn.ErrInvalid and sends nothing, and no returned error,
// kept error answer or log line holds a BSN, whatever the source echoes.
package connectors_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
)

// resident is the BSN asked about (Suzanne Moulin of the BRP test set);
// other is another valid BSN a source may echo.
const (
	resident = "999993653"
	other    = "999990020"
)

// call asks the connector, built against root, about one resident.
type call func(ctx context.Context, root string, log *slog.Logger, resident string) error

// connector is one source's client with what a test needs to know of the
// source's API.
type connector struct {
	name string
	call call
	// rejection is a 400 answer in the source's own error shape that
	// echoes the request: %[1]s is the resident, %[2]s another BSN.
	rejection string
	// nextPage is a listing page whose next link is %[1]s; "" for a source
	// without listings.
	nextPage string
}

// httpConfig answers at once and does not retry: these tests are about what
// errors say, not how often they are tried.
func httpConfig(log *slog.Logger) upstream.Config {
	return upstream.Config{Timeout: 2 * time.Second, Retries: -1, Logger: log}
}

// salesforceKey is the connected app's key, made once for all tests.
var salesforceKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const salesforceTokenPath = "/services/oauth2/token"

func connectors(t *testing.T) []connector {
	return []connector{
		{
			name: "brp",
			call: func(ctx context.Context, root string, log *slog.Logger, resident string) error {
				c, err := brp.New(brp.Config{URL: root + "/haalcentraal/api/brp", APIKey: "key", HTTP: httpConfig(log)})
				require.NoError(t, err)
				_, err = c.Person(ctx, resident, []string{"naam"})
				return err
			},
			rejection: `{"type":"https://datatracker.ietf.org/doc/html/rfc7231#section-6.5.1","title":"Een of meerdere parameters zijn niet correct.","status":400,"code":"paramsValidation",` +
				`"invalidParams":[{"name":"burgerservicenummer[0]","code":"pattern","reason":"%[1]s is onjuist, bedoelt u %[2]s?"}]}`,
		},
		{
			name: "zaken",
			call: func(ctx context.Context, root string, log *slog.Logger, resident string) error {
				c, err := zaken.New(zaken.Config{
					ZakenURL: root + "/zaken/api/v1", CatalogiURL: root + "/catalogi/api/v1",
					ClientID: "klantbeeld", Secret: "een-geheim-van-minstens-32-tekens-lang", HTTP: httpConfig(log),
				})
				require.NoError(t, err)
				_, err = c.Zaken(ctx, zaken.Query{BSN: resident, MaxVertrouwelijkheid: "geheim", User: zaken.User{ID: "m.devries"}})
				return err
			},
			rejection: `{"type":"http://localhost/ref/fouten/ValidationError/","code":"invalid","title":"Invalid input.","status":400,"detail":"","instance":"urn:uuid:1",` +
				`"invalidParams":[{"name":"rol__betrokkeneIdentificatie__natuurlijkPersoon__inpBsn","code":"invalid","reason":"%[1]s is geen rol van %[2]s."}]}`,
			nextPage: `{"count":1,"next":"%s","previous":null,"results":[]}`,
		},
		{
			name: "salesforce",
			call: func(ctx context.Context, root string, log *slog.Logger, resident string) error {
				c, err := salesforce.New(salesforce.Config{
					URL: root, LoginURL: root, ConsumerKey: "3MVG9key", Username: "integratie@gemeente.example",
					PrivateKey: salesforceKey(), HTTP: httpConfig(log),
				})
				require.NoError(t, err)
				_, err = c.Profile(ctx, salesforce.Query{BSN: resident, CaseDomains: []string{"BURZA"}, Callbacks: true})
				return err
			},
			rejection: `[{"message":"\nSELECT Id FROM Contact WHERE BSN__c = '%[1]s' LIMIT 2\n ^\nERROR at Row:1:Column:33\nunexpected token: '%[1]s' near %[2]s",` +
				`"errorCode":"MALFORMED_QUERY","fields":["BSN__c","%[1]s"]}]`,
			// The profile's queries go in one composite request; the
			// Contact's answer comes first.
			nextPage: `{"compositeResponse":[` +
				`{"body":{"totalSize":1,"done":false,"nextRecordsUrl":"%[1]s","records":[]},"httpHeaders":{},"httpStatusCode":200,"referenceId":"contact"},` +
				`{"body":{"totalSize":0,"done":true,"records":[]},"httpHeaders":{},"httpStatusCode":200,"referenceId":"cases"},` +
				`{"body":{"totalSize":0,"done":true,"records":[]},"httpHeaders":{},"httpStatusCode":200,"referenceId":"tasks"}]}`,
		},
		{
			name: "klantinteracties",
			call: func(ctx context.Context, root string, log *slog.Logger, resident string) error {
				c, err := klantinteracties.New(klantinteracties.Config{URL: root + "/klantinteracties/api/v1", Token: "token", HTTP: httpConfig(log)})
				require.NoError(t, err)
				_, err = c.Contacts(ctx, klantinteracties.Query{BSN: resident})
				return err
			},
			rejection: `{"type":"","code":"invalid","title":"Ongeldige invoer.","status":400,"detail":"","instance":"urn:uuid:1",` +
				`"invalidParams":[{"name":"partijIdentificator__objectId","code":"invalid","reason":"%[1]s is ongeldig; %[2]s ook."}]}`,
			nextPage: `{"count":1,"next":"%s","previous":null,"results":[]}`,
		},
	}
}

// source serves answer for every request, after a Salesforce sign-in that
// always succeeds, and counts the requests besides the sign-in.
func source(t *testing.T, answer http.HandlerFunc) (root string, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == salesforceTokenPath {
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"access_token":"00Dtoken","token_type":"Bearer","instance_url":"http://%s"}`, r.Host)
			return
		}
		requests.Add(1)
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

func TestNoErrorOfAnyConnectorHoldsABSN(t *testing.T) {
	scenarios := []struct {
		name string
		// answer is what the source says to the connector's first request.
		answer func(c connector) http.HandlerFunc
		want   error
	}{
		{"a 400 in the source's own error shape that echoes the BSN", func(c connector) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = fmt.Fprintf(w, c.rejection, resident, other)
			}
		}, upstream.ErrRejected},
		{"a 500 that echoes the BSN and the request", func(connector) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = fmt.Fprintf(w, `{"detail":"geen persoon %s","instance":%q}`, resident, r.URL.String())
			}
		}, upstream.ErrUnavailable},
		{"a redirect to a URL with the BSN", func(connector) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/personen/"+resident+"?bsn="+resident, http.StatusFound)
			}
		}, upstream.ErrRejected},
		{"an answer that is no JSON but echoes the BSN", func(connector) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = fmt.Fprintf(w, `<html>%s</html>`, resident)
			}
		}, upstream.ErrBadResponse},
		{"a next link to another host with the BSN in its path", func(c connector) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = fmt.Fprintf(w, c.nextPage, "https://elders.example/personen/"+resident+"?bsn="+resident)
			}
		}, upstream.ErrForeignLink},
	}
	for _, c := range connectors(t) {
		for _, sc := range scenarios {
			if sc.want == upstream.ErrForeignLink && c.nextPage == "" {
				continue // a source without listings has no next links
			}
			t.Run(c.name+": "+sc.name, func(t *testing.T) {
				root, _ := source(t, sc.answer(c))
				// slog's handler serialises the writes; the call is over before the log is read.
				var l bytes.Buffer
				err := c.call(t.Context(), root, slog.New(slog.NewJSONHandler(&l, &slog.HandlerOptions{Level: slog.LevelDebug})), resident)
				require.ErrorIs(t, err, sc.want)
				for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), l.String()} {
					assert.NotContains(t, s, resident)
					assert.NotContains(t, s, other)
				}
				if se, ok := errors.AsType[*upstream.StatusError](err); ok {
					assert.NotContains(t, se.Path, resident)
					assert.NotContains(t, string(se.Body), resident, "the kept error answer")
					assert.NotContains(t, string(se.Body), other, "the kept error answer")
				}
				if ae, ok := errors.AsType[*salesforce.APIError](err); ok {
					assert.NotContains(t, fmt.Sprint(ae.Code, ae.Message, ae.Fields), resident)
					assert.NotContains(t, fmt.Sprint(ae.Code, ae.Message, ae.Fields), other)
				}
			})
		}
	}
}

func TestAnInvalidBSNIsTheSameErrorForEveryConnector(t *testing.T) {
	for _, c := range connectors(t) {
		for _, in := range []string{"", "99999365", "9999936530", "99999365a", "999993654", "000000000", "999993653\n", "999993653' OR '1'='1"} {
			t.Run(fmt.Sprintf("%s refuses %q", c.name, in), func(t *testing.T) {
				root, requests := source(t, func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(http.StatusTeapot)
				})
				err := c.call(t.Context(), root, nil, in)
				require.ErrorIs(t, err, bsn.ErrInvalid)
				assert.Zero(t, requests.Load(), "nothing is sent for an invalid BSN")
				if len(in) >= 8 {
					assert.NotContains(t, err.Error(), in[:8], "the value is never echoed")
				}
			})
		}
	}
}
