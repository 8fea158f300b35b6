// Package salesforce is the connector to the municipality's Salesforce
// CRM: it finds a resident's Contact by the custom field BSN__c and reads
// the Cases of the permitted domains (Domein__c) and the Tasks about them —
// callbacks (TaskSubtype Task) and logged calls (TaskSubtype Call) — with
// SOQL through the REST API: all queries of one profile in one request to
// the Composite resource (composite.go), following nextRecordsUrl where an
// answer has more pages. It signs in with the OAuth 2.0 JWT bearer flow,
// keeps the access token until Salesforce says the session is invalid, and
// then gets one new token for all callers.
//
// Every value in a query is validated and escaped (soql.go). Filtering by
// domain and subtype happens in the query (the tasks by a semi-join on the
// cases of the domains), so records a purpose may not see never leave
// Salesforce. Errors and logs never hold the BSN: it only travels in the
// query string and the composite request's body, which package upstream
// never logs or puts in an error, and every error is redacted with package
// bsn, including the messages Salesforce echoes the query in.
package salesforce

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// Errors of the package besides those of package upstream, which the
// returned errors wrap (classify them with errors.Is).
var (
	// ErrRequestLimit: the org's API request limit is used up (403
	// REQUEST_LIMIT_EXCEEDED). Errors that match it also match
	// upstream.ErrUnavailable: the source is down for us until the limit
	// resets, it did not refuse this request as such.
	ErrRequestLimit = errors.New("salesforce: request limit exceeded")
	// ErrInvalidQuery: a Query value failed validation; nothing was sent.
	// For the BSN the error also matches bsn.ErrInvalid.
	ErrInvalidQuery = errors.New("salesforce: invalid query")
	// ErrAmbiguousContact: more than one Contact has the BSN. The profile
	// is refused rather than merged, since one of them is someone else's
	// record with a wrong BSN__c. It also matches upstream.ErrBadResponse.
	ErrAmbiguousContact = errors.New("salesforce: more than one Contact has the BSN")
)

// DefaultAPIVersion is the REST API version used when Config.APIVersion is empty.
const DefaultAPIVersion = "v60.0"

// Config configures a Client.
type Config struct {
	// URL is the instance URL (https://gemeente.my.salesforce.com): queries
	// and nextRecordsUrl go there. The instance_url of the token answer is
	// not used, so the login server cannot redirect queries elsewhere.
	URL string
	// LoginURL is the authorization server (https://login.salesforce.com,
	// https://test.salesforce.com for a sandbox): the token endpoint, and
	// the JWT's aud.
	LoginURL string
	// ConsumerKey of the connected app: the JWT's iss.
	ConsumerKey string
	// Username of the integration user: the JWT's sub.
	Username string
	// PrivateKey is the RSA key (2048 bits or more) of the connected app's
	// certificate; see ParsePrivateKey.
	PrivateKey crypto.Signer
	// APIVersion such as "v60.0"; "": DefaultAPIVersion.
	APIVersion string
	// HTTP tunes timeouts, retries and the circuit breaker; New sets its
	// Name ("salesforce") and BaseURLs ([URL, LoginURL]).
	HTTP upstream.Config
	// Now is the clock for the JWT's exp; nil: time.Now.
	Now func() time.Time
}

// Client reads resident profiles from Salesforce. It is safe for concurrent use.
type Client struct {
	http         *upstream.Client
	queryURL     string // instance URL + /services/data/<version>/query
	compositeURL string // instance URL + /services/data/<version>/composite
	dataPath     string // /services/data/<version>: subrequests name resources by path
	tokenURL     string
	audience     string
	cfg          Config
	tokens       tokenSource
}

// New checks cfg and returns a client. It sends nothing. Its errors name
// the Config field at fault (Config.URL, Config.ConsumerKey, ...).
func New(cfg Config) (*Client, error) {
	instance, err := upstream.ParseBaseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("salesforce: Config.URL: %w", err)
	}
	login, err := upstream.ParseBaseURL(cfg.LoginURL)
	if err != nil {
		return nil, fmt.Errorf("salesforce: Config.LoginURL: %w", err)
	}
	switch {
	case cfg.ConsumerKey == "":
		return nil, errors.New("salesforce: Config.ConsumerKey is empty")
	case cfg.Username == "":
		return nil, errors.New("salesforce: Config.Username is empty")
	case cfg.PrivateKey == nil:
		return nil, errors.New("salesforce: Config.PrivateKey is nil")
	}
	if err := checkRSAKey(cfg.PrivateKey); err != nil {
		return nil, fmt.Errorf("salesforce: Config.PrivateKey: %w", err)
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	if !validAPIVersion(cfg.APIVersion) {
		return nil, fmt.Errorf("salesforce: Config.APIVersion %q: want the form v60.0", cfg.APIVersion)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.HTTP.Name = "salesforce"
	cfg.HTTP.BaseURLs = []string{instance.String(), login.String()}
	h, err := upstream.New(cfg.HTTP)
	if err != nil {
		return nil, fmt.Errorf("salesforce: Config.HTTP: %w", err)
	}
	c := &Client{
		http:         h,
		queryURL:     instance.String() + "/services/data/" + cfg.APIVersion + "/query",
		compositeURL: instance.String() + "/services/data/" + cfg.APIVersion + "/composite",
		dataPath:     "/services/data/" + cfg.APIVersion,
		tokenURL:     login.String() + "/services/oauth2/token",
		audience:     login.String(),
		cfg:          cfg,
	}
	c.tokens.fetch = c.requestToken
	c.tokens.bound = h.Bound
	return c, nil
}

func validAPIVersion(v string) bool {
	major, minor, ok := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	return ok && strings.HasPrefix(v, "v") && major != "" && minor != "" &&
		len(major) <= 3 && len(minor) <= 2 && allBytes(major, isDigit) && allBytes(minor, isDigit)
}

// Query says what to read about one resident.
type Query struct {
	BSN             string
	CaseDomains     []string // fetch cases with these Domein__c values (and tasks about them); empty: no cases
	UndomainedTasks bool     // also tasks not about any case (WhatId null)
	Callbacks       bool     // tasks with TaskSubtype 'Task'
	Calls           bool     // tasks with TaskSubtype 'Call' (logged calls)
}

// Profile is what Salesforce holds on a resident, as far as the query asked.
type Profile struct {
	Cases []Case
	Tasks []Task
}

// Case is a Salesforce Case.
type Case struct {
	ID, CaseNumber, Subject, Status, Origin, Domain string // Domain: Domein__c

	Created time.Time // CreatedDate, UTC
	Closed  bool      // IsClosed
}

// Task is a callback request (Subtype "Task") or a logged call ("Call").
type Task struct {
	ID, Subtype, Subject, Status, Owner string // Owner: Owner.Name

	Due         string    // ActivityDate YYYY-MM-DD, "" when none
	ReminderAt  time.Time // ReminderDateTime, UTC; zero when none
	ReminderSet bool      // IsReminderSet
	Reminders   int       // Reminders__c
	CaseID      string    // WhatId when it is one of the fetched cases; "" when not about a case
	Created     time.Time // CreatedDate, UTC
	Closed      bool      // IsClosed
}

// Profile returns the cases and tasks q asks for, newest first, in one
// round trip (more only when an answer has further pages). It returns an
// empty profile (no error) when no Contact has the BSN, and sends nothing
// when q asks for nothing that could be found. Since the queries are sent
// together, the cases and tasks of the first of two Contacts with the BSN
// are read before the answer shows there are two; they are dropped with
// ErrAmbiguousContact.
//
// Errors: ErrInvalidQuery (q fails validation); ErrAmbiguousContact;
// ErrRequestLimit; *APIError for an error answer of Salesforce (matching
// upstream.ErrRejected for a 4xx, upstream.ErrUnavailable for a 5xx); and
// the errors of package upstream (ErrTimeout, ErrUnavailable,
// ErrCircuitOpen, ErrBadResponse, ErrForeignLink). No error holds a BSN.
func (c *Client) Profile(ctx context.Context, q Query) (*Profile, error) {
	p, err := c.profile(ctx, q)
	if err != nil {
		return nil, bsn.RedactError(err)
	}
	return p, nil
}

func (c *Client) profile(ctx context.Context, q Query) (*Profile, error) {
	b, err := newBSN(q.BSN)
	if err != nil {
		return nil, err
	}
	var domains []domain
	for _, s := range q.CaseDomains {
		d, err := newDomain(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	var subtypes []subtype
	if q.Callbacks {
		subtypes = append(subtypes, subtypeCallback)
	}
	if q.Calls {
		subtypes = append(subtypes, subtypeCall)
	}
	profile := &Profile{Cases: []Case{}, Tasks: []Task{}}
	wantTasks := len(subtypes) > 0 && (len(domains) > 0 || q.UndomainedTasks)
	if len(domains) == 0 && !wantTasks {
		return profile, nil
	}

	// One composite request: the Contact, then by reference to it the
	// cases of the domains and the tasks about them (a semi-join on the
	// same filter) and, when asked, the tasks about no case.
	soql, err := contactSOQL(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	qs := []subquery{{refContact, soql}}
	add := func(ref string, soql string, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidQuery, err)
		}
		qs = append(qs, subquery{ref, soql})
		return nil
	}
	if len(domains) > 0 {
		soql, err := casesSOQL(contactID, domains)
		if err := add(refCases, soql, err); err != nil {
			return nil, err
		}
		if len(subtypes) > 0 {
			soql, err := tasksSOQL(contactID, subtypes, domains)
			if err := add(refTasks, soql, err); err != nil {
				return nil, err
			}
		}
	}
	if len(subtypes) > 0 && q.UndomainedTasks {
		soql, err := undomainedTasksSOQL(contactID, subtypes)
		if err := add(refUndomained, soql, err); err != nil {
			return nil, err
		}
	}

	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	answers, err := c.composite(ctx, qs)
	if err != nil {
		return nil, err
	}
	contacts, err := records[contactRecord](ctx, c, answers[refContact])
	if err != nil {
		return nil, err
	}
	switch len(contacts) {
	case 0:
		// The other subrequests found no contact to refer to
		// (PROCESSING_HALTED): the resident is not in Salesforce.
		return profile, nil
	case 1:
	default:
		return nil, fmt.Errorf("%w (%w)", ErrAmbiguousContact, upstream.ErrBadResponse)
	}
	if _, err := newID(contacts[0].ID); err != nil {
		return nil, badResponse("Contact Id: %v", err)
	}

	cases := map[string]bool{}
	if a, ok := answers[refCases]; ok {
		recs, err := records[caseRecord](ctx, c, a)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			cs, err := r.toCase(domains)
			if err != nil {
				return nil, err
			}
			profile.Cases = append(profile.Cases, cs)
			cases[cs.ID] = true
		}
	}
	for _, ref := range []string{refTasks, refUndomained} {
		a, ok := answers[ref]
		if !ok {
			continue
		}
		recs, err := records[taskRecord](ctx, c, a)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			// A task about a case must be about one of the cases just
			// read, and only the undomained query may give tasks about
			// none, and only those.
			if ref == refUndomained && r.WhatID != nil && *r.WhatID != "" {
				return nil, badResponse("Task about a case among the tasks about none")
			}
			t, err := r.toTask(subtypes, cases, ref == refUndomained)
			if err != nil {
				return nil, err
			}
			profile.Tasks = append(profile.Tasks, t)
		}
	}
	slices.SortStableFunc(profile.Tasks, func(a, b Task) int { return b.Created.Compare(a.Created) })
	return profile, nil
}

func badResponse(format string, args ...any) error {
	return fmt.Errorf("salesforce: %w: %s", upstream.ErrBadResponse, fmt.Sprintf(format, args...))
}

type contactRecord struct {
	ID string `json:"Id"`
}

type caseRecord struct {
	ID          string `json:"Id"`
	CaseNumber  string
	Subject     string
	Status      string
	Origin      string
	CreatedDate string
	Domain      string `json:"Domein__c"`
	IsClosed    bool
}

// toCase checks r against what was asked: a source that ignores the
// domain filter gets a bad response rather than a pass for its records.
func (r caseRecord) toCase(domains []domain) (Case, error) {
	if _, err := newID(r.ID); err != nil {
		return Case{}, badResponse("Case Id: %v", err)
	}
	if !slices.Contains(domains, domain(r.Domain)) {
		return Case{}, badResponse("Case of a domain that was not asked for")
	}
	created, err := parseDateTime(r.CreatedDate)
	if err != nil {
		return Case{}, badResponse("Case CreatedDate: %v", err)
	}
	return Case{
		ID: r.ID, CaseNumber: r.CaseNumber, Subject: r.Subject, Status: r.Status,
		Origin: r.Origin, Domain: r.Domain, Created: created, Closed: r.IsClosed,
	}, nil
}

type taskRecord struct {
	ID           string `json:"Id"`
	TaskSubtype  string
	Subject      string
	Status       string
	ActivityDate *string
	Owner        *struct {
		Name string
	}
	ReminderDateTime *string
	IsReminderSet    bool
	Reminders        *float64 `json:"Reminders__c"`
	WhatID           *string  `json:"WhatId"`
	CreatedDate      string
	IsClosed         bool
}

// maxReminders bounds Reminders__c to something a counter can be.
const maxReminders = 1_000_000

func (r taskRecord) toTask(subtypes []subtype, cases map[string]bool, undomained bool) (Task, error) {
	if _, err := newID(r.ID); err != nil {
		return Task{}, badResponse("Task Id: %v", err)
	}
	if !slices.Contains(subtypes, subtype(r.TaskSubtype)) {
		return Task{}, badResponse("Task of a subtype that was not asked for")
	}
	t := Task{
		ID: r.ID, Subtype: r.TaskSubtype, Subject: r.Subject, Status: r.Status,
		ReminderSet: r.IsReminderSet, Closed: r.IsClosed,
	}
	switch {
	case r.WhatID == nil || *r.WhatID == "":
		if !undomained {
			return Task{}, badResponse("Task about no case, which was not asked for")
		}
	case cases[*r.WhatID]:
		t.CaseID = *r.WhatID
	default:
		return Task{}, badResponse("Task about a case that was not asked for")
	}
	if r.Owner != nil {
		t.Owner = r.Owner.Name
	}
	if r.ActivityDate != nil && *r.ActivityDate != "" {
		if _, err := time.Parse(time.DateOnly, *r.ActivityDate); err != nil {
			return Task{}, badResponse("Task ActivityDate: %v", err)
		}
		t.Due = *r.ActivityDate
	}
	if r.ReminderDateTime != nil && *r.ReminderDateTime != "" {
		at, err := parseDateTime(*r.ReminderDateTime)
		if err != nil {
			return Task{}, badResponse("Task ReminderDateTime: %v", err)
		}
		t.ReminderAt = at
	}
	if r.Reminders != nil {
		n := *r.Reminders
		if n < 0 || n > maxReminders || n != math.Trunc(n) {
			return Task{}, badResponse("Task Reminders__c is not a count")
		}
		t.Reminders = int(n)
	}
	created, err := parseDateTime(r.CreatedDate)
	if err != nil {
		return Task{}, badResponse("Task CreatedDate: %v", err)
	}
	t.Created = created
	return t, nil
}

// parseDateTime reads the REST API's dateTime form
// (2026-11-14T09:00:00.000+0000), accepting RFC 3339 too.
func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05.999999999-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("not a dateTime")
}

// queryPage is one answer of the query resource.
type queryPage[T any] struct {
	TotalSize      int    `json:"totalSize"`
	Done           bool   `json:"done"`
	NextRecordsURL string `json:"nextRecordsUrl"`
	Records        []T    `json:"records"`
}

// Contents reads the page as upstream.Pages asks: nextRecordsUrl, a path
// under the instance URL, until the answer says done.
func (p queryPage[T]) Contents() ([]T, string, error) {
	switch {
	case p.Done:
		return p.Records, "", nil
	case p.NextRecordsURL == "":
		return nil, "", fmt.Errorf("%w: query answer neither done nor with nextRecordsUrl", upstream.ErrBadResponse)
	}
	return p.Records, p.NextRecordsURL, nil
}

// get sends an authenticated GET and decodes the answer into out. On 401
// INVALID_SESSION_ID it gets a new token once and tries again.
func (c *Client) get(ctx context.Context, target string, out any) error {
	return c.send(ctx, http.MethodGet, target, nil, out)
}

// send is get for a read of any method: a POST with a JSON body (a
// composite request of queries) is retried like a GET, as it changes
// nothing either.
func (c *Client) send(ctx context.Context, method, target string, body []byte, out any) error {
	return c.do(ctx, method, target, body, true, out)
}

// do sends an authenticated request, retried by the HTTP client only when
// idempotent, and decodes a JSON answer into out (nil: the answer, e.g.
// 204, is not read). On 401 INVALID_SESSION_ID it gets a new token once
// and tries again.
func (c *Client) do(ctx context.Context, method, target string, body []byte, idempotent bool, out any) error {
	for attempt := 0; ; attempt++ {
		token, gen, err := c.tokens.get(ctx)
		if err != nil {
			return err
		}
		header := http.Header{
			"Authorization": {"Bearer " + token},
			"Accept":        {"application/json"},
		}
		if body != nil {
			header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(ctx, upstream.Request{
			Method:     method,
			URL:        target,
			Header:     header,
			Body:       body,
			Idempotent: idempotent,
		})
		if err != nil {
			se, ok := errors.AsType[*upstream.StatusError](err)
			if !ok {
				return err
			}
			apiErr := newAPIError(se)
			if se.Status == http.StatusUnauthorized && apiErr.Code == "INVALID_SESSION_ID" && attempt == 0 {
				c.tokens.invalidate(gen)
				continue
			}
			return apiErr
		}
		if out == nil {
			return nil
		}
		if err := upstream.DecodeJSON(resp.Body, out); err != nil {
			u, _ := url.Parse(target)
			return fmt.Errorf("salesforce: %s %s: %w: %v", method, u.Path, upstream.ErrBadResponse, err)
		}
		return nil
	}
}

// APIError is an error answer of Salesforce: the first element of the REST
// API's error array [{"message","errorCode","fields"}], or the token
// endpoint's {"error","error_description"}. Code, Message and Fields are
// cleaned (see cleanMessage): Salesforce echoes the query in its messages,
// and the query holds the BSN.
//
// It matches ErrRequestLimit and upstream.ErrUnavailable for
// REQUEST_LIMIT_EXCEEDED, and otherwise what its *upstream.StatusError
// matches (upstream.ErrRejected for a 4xx, upstream.ErrUnavailable for a
// 5xx).
type APIError struct {
	Status  int
	Code    string // errorCode, or the OAuth error
	Message string
	Fields  []string
	status  *upstream.StatusError
}

func (e *APIError) Error() string {
	s := e.status.Error()
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if len(e.Fields) > 0 {
		s += " (fields: " + strings.Join(e.Fields, ", ") + ")"
	}
	return s
}

func (e *APIError) Unwrap() []error {
	if e.Code == "REQUEST_LIMIT_EXCEEDED" {
		return []error{ErrRequestLimit, upstream.ErrUnavailable}
	}
	return []error{e.status}
}

// newAPIError reads the error body of se; a body it cannot read leaves
// Code and Message empty.
func newAPIError(se *upstream.StatusError) *APIError {
	e := &APIError{Status: se.Status, status: se}
	var list []struct {
		Message   string   `json:"message"`
		ErrorCode string   `json:"errorCode"`
		Fields    []string `json:"fields"`
	}
	var oauth struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	switch {
	case upstream.DecodeJSON(se.Body, &list) == nil && len(list) > 0:
		e.Code, e.Message = list[0].ErrorCode, list[0].Message
		for _, f := range list[0].Fields {
			e.Fields = append(e.Fields, cleanMessage(f))
		}
	case upstream.DecodeJSON(se.Body, &oauth) == nil:
		e.Code, e.Message = oauth.Error, oauth.Description
	}
	e.Code = cleanMessage(e.Code)
	e.Message = cleanMessage(e.Message)
	return e
}

// maxMessage is how much of Salesforce's message an error keeps.
const maxMessage = 300

// cleanMessage makes a message from Salesforce fit to log: it drops the
// echo of the query before "ERROR at Row:…", masks every BSN (bsn.Redact),
// folds white space and keeps at most maxMessage bytes of valid UTF-8.
func cleanMessage(msg string) string {
	if i := strings.Index(msg, "ERROR at Row:"); i >= 0 {
		msg = msg[i:]
		if j := strings.IndexByte(msg, '\n'); j >= 0 {
			msg = msg[j+1:]
		}
	}
	msg = bsn.Redact(msg)
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	return strings.ToValidUTF8(msg, "")
}
