package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// Profile asks its queries in one request to the Composite resource
// (POST /services/data/vXX.X/composite): the Contact, and the cases and
// tasks of that Contact by reference to the first subrequest's answer, so
// one view costs one round trip and one API request of the org's daily
// limit. allOrNone is false: the queries only read, and the answer of each
// is judged on its own.

// Reference ids of Profile's subrequests.
const (
	refContact    = "contact"
	refCases      = "cases"
	refTasks      = "tasks"
	refUndomained = "undomainedTasks"
)

// subquery is one query subrequest.
type subquery struct {
	ref  string
	soql string
}

type compositeRequest struct {
	AllOrNone        bool                  `json:"allOrNone"`
	CompositeRequest []compositeSubrequest `json:"compositeRequest"`
}

type compositeSubrequest struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	ReferenceID string `json:"referenceId"`
}

type compositeAnswer struct {
	CompositeResponse []subanswer `json:"compositeResponse"`
}

// subanswer is the answer to one subrequest: its status and its body, a
// query result or an error array.
type subanswer struct {
	Body           json.RawMessage `json:"body"`
	HTTPStatusCode int             `json:"httpStatusCode"`
	ReferenceID    string          `json:"referenceId"`
}

// subqueryURL is the url of a query subrequest: the SOQL query-escaped,
// but contactID left as written, for Salesforce to find and resolve.
func (c *Client) subqueryURL(soql string) string {
	parts := strings.Split(soql, string(contactID))
	for i, p := range parts {
		parts[i] = url.QueryEscape(p)
	}
	return c.dataPath + "/query?q=" + strings.Join(parts, string(contactID))
}

// composite sends qs as one composite request and returns the answer of
// each by its reference id. An answer that lacks one of them, or holds one
// twice, is a bad response.
func (c *Client) composite(ctx context.Context, qs []subquery) (map[string]subanswer, error) {
	req := compositeRequest{CompositeRequest: make([]compositeSubrequest, len(qs))}
	for i, q := range qs {
		req.CompositeRequest[i] = compositeSubrequest{Method: http.MethodGet, URL: c.subqueryURL(q.soql), ReferenceID: q.ref}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("salesforce: composite request: %w", err)
	}
	var answer compositeAnswer
	if err := c.send(ctx, http.MethodPost, c.compositeURL, body, &answer); err != nil {
		return nil, err
	}
	out := make(map[string]subanswer, len(qs))
	for _, a := range answer.CompositeResponse {
		if _, dup := out[a.ReferenceID]; dup {
			return nil, badResponse("composite answer holds subrequest %.40q twice", a.ReferenceID)
		}
		out[a.ReferenceID] = a
	}
	for _, q := range qs {
		if _, ok := out[q.ref]; !ok {
			return nil, badResponse("composite answer without subrequest %s", q.ref)
		}
	}
	return out, nil
}

// failed is the error of a subrequest that did not answer 200, as the
// same answer to a request of its own would be: an *APIError, matching
// upstream.ErrRejected for a 4xx and upstream.ErrUnavailable for a 5xx
// (and ErrRequestLimit for REQUEST_LIMIT_EXCEEDED).
func (c *Client) failed(a subanswer) error {
	if a.HTTPStatusCode == http.StatusOK {
		return nil
	}
	if a.HTTPStatusCode < 100 || a.HTTPStatusCode > 599 {
		return badResponse("subrequest %s with status %d", a.ReferenceID, a.HTTPStatusCode)
	}
	body := []byte(a.Body)
	if len(body) > upstream.MaxErrorBody {
		body = body[:upstream.MaxErrorBody]
	}
	return newAPIError(&upstream.StatusError{
		Source: "salesforce",
		Method: http.MethodGet,
		Path:   c.dataPath + "/query (composite subrequest " + a.ReferenceID + ")",
		Status: a.HTTPStatusCode,
		Body:   []byte(bsn.Redact(string(body))),
	})
}

// records reads every record of a query subrequest's answer: the first
// page is the answer's body, the others are fetched by nextRecordsUrl.
func records[T any](ctx context.Context, c *Client, a subanswer) ([]T, error) {
	if err := c.failed(a); err != nil {
		return nil, err
	}
	var all []T
	first := true
	err := upstream.Pages(ctx, c.http, c.queryURL,
		func(ctx context.Context, link string, page *queryPage[T]) error {
			if first {
				first = false
				if err := upstream.DecodeJSON(a.Body, page); err != nil {
					return badResponse("subrequest %s: %v", a.ReferenceID, err)
				}
				return nil
			}
			return c.get(ctx, link, page)
		},
		func(r T) error {
			all = append(all, r)
			return nil
		},
		upstream.PageOptions{},
	)
	if err != nil {
		return nil, err
	}
	return all, nil
}
