// Package viewtest holds in-memory fakes of the four source connectors for
// tests of package view and of its users (the gateway): each answers what it
// is given, fails with an error word as the view reports it, and records
// what it was asked. Answers groups them and can be read from JSON, so that
// a test states a resident's records without importing any connector.
package viewtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/view"
)

// Error is an error that the view reports as word ("timeout", "deadline"
// (reported as timeout), "circuit_open", "bad_response", "foreign_link",
// "rejected", "unavailable", "canceled", "error"), wrapped as a connector
// wraps it; nil for "". Any other word panics: a test with a typo fails.
func Error(word string) error {
	sentinel, ok := map[string]error{
		"":             nil,
		"timeout":      upstream.ErrTimeout,
		"deadline":     context.DeadlineExceeded,
		"circuit_open": upstream.ErrCircuitOpen,
		"bad_response": upstream.ErrBadResponse,
		"foreign_link": upstream.ErrForeignLink,
		"rejected":     upstream.ErrRejected,
		"unavailable":  upstream.ErrUnavailable,
		"canceled":     context.Canceled,
		"error":        errors.New("something else went wrong"),
	}[word]
	if !ok {
		panic("viewtest: no error for the word " + word)
	}
	if sentinel == nil {
		return nil
	}
	return fmt.Errorf("fake: %w", sentinel)
}

// BRP is a fake BRP connector (view.BRPClient).
type BRP struct {
	// Answer is the person; nil: the BRP does not know the BSN.
	Answer *brp.Person `json:"person"`
	// Err is the word of the error to fail with (see Error).
	Err string `json:"error"`
	// Panic, when not nil, is what Person panics with.
	Panic any `json:"-"`

	mu     sync.Mutex
	calls  int
	fields []string
}

var _ view.BRPClient = (*BRP)(nil)

// Person answers Answer, or fails with Err.
func (f *BRP) Person(_ context.Context, _ string, fields []string) (*brp.Person, error) {
	f.mu.Lock()
	f.calls++
	f.fields = fields
	f.mu.Unlock()
	if f.Panic != nil {
		panic(f.Panic)
	}
	return f.Answer, Error(f.Err)
}

// Calls is how often Person was called.
func (f *BRP) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Fields are the field paths of the last call.
func (f *BRP) Fields() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fields
}

// Zaken is a fake Zaken connector (view.ZakenClient).
type Zaken struct {
	// Answer are the resident's zaken.
	Answer []zaken.Zaak `json:"zaken"`
	// Domains answer Domain; a zaak not in it is not found.
	Domains map[string]string `json:"domains"`
	// Err is the word of the error Zaken fails with (see Error).
	Err string `json:"error"`
	// Panic, when not nil, is what Zaken panics with.
	Panic any `json:"-"`
	// LookupDelay keeps each Domain call in flight this long.
	LookupDelay time.Duration `json:"-"`
	// LookupPanic makes Domain panic.
	LookupPanic bool `json:"-"`

	mu          sync.Mutex
	calls       int
	query       zaken.Query
	lookups     []string
	inFlight    int
	maxInFlight int
}

var _ view.ZakenClient = (*Zaken)(nil)

// Zaken answers Answer, or fails with Err.
func (f *Zaken) Zaken(_ context.Context, q zaken.Query) ([]zaken.Zaak, error) {
	f.mu.Lock()
	f.calls++
	f.query = q
	f.mu.Unlock()
	if f.Panic != nil {
		panic(f.Panic)
	}
	return f.Answer, Error(f.Err)
}

// Domain answers from Domains, else zaken.ErrNotFound.
func (f *Zaken) Domain(_ context.Context, id string, _ zaken.User) (string, error) {
	f.mu.Lock()
	f.calls++
	f.lookups = append(f.lookups, id)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.LookupPanic {
		panic("viewtest: domain look-up bug")
	}
	time.Sleep(f.LookupDelay)
	if d, ok := f.Domains[id]; ok {
		return d, nil
	}
	return "", zaken.ErrNotFound
}

// Calls is how often Zaken and Domain were called together.
func (f *Zaken) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Query is the query of the last Zaken call.
func (f *Zaken) Query() zaken.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.query
}

// LookedUp are the zaken Domain was asked about, in order; nil for none.
func (f *Zaken) LookedUp() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lookups)
}

// MaxInFlight is the most Domain calls that were in flight at once.
func (f *Zaken) MaxInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInFlight
}

// Salesforce is a fake Salesforce connector (view.SalesforceClient).
type Salesforce struct {
	// Answer is the profile, returned whatever the query asks.
	Answer *salesforce.Profile `json:"profile"`
	// Err is the word of the error to fail with (see Error).
	Err string `json:"error"`

	mu    sync.Mutex
	calls int
	query salesforce.Query
}

var _ view.SalesforceClient = (*Salesforce)(nil)

// Profile answers Answer, or fails with Err.
func (f *Salesforce) Profile(_ context.Context, q salesforce.Query) (*salesforce.Profile, error) {
	f.mu.Lock()
	f.calls++
	f.query = q
	f.mu.Unlock()
	return f.Answer, Error(f.Err)
}

// Calls is how often Profile was called.
func (f *Salesforce) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Query is the query of the last call.
func (f *Salesforce) Query() salesforce.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.query
}

// Klantinteracties is a fake Klantinteracties connector
// (view.KlantinteractiesClient).
type Klantinteracties struct {
	// Answer are the contacts, returned whatever the query asks.
	Answer []klantinteracties.Contact `json:"contacts"`
	// Err is the word of the error to fail with (see Error).
	Err string `json:"error"`

	mu    sync.Mutex
	calls int
	query klantinteracties.Query
}

var _ view.KlantinteractiesClient = (*Klantinteracties)(nil)

// Contacts answers Answer, or fails with Err.
func (f *Klantinteracties) Contacts(_ context.Context, q klantinteracties.Query) ([]klantinteracties.Contact, error) {
	f.mu.Lock()
	f.calls++
	f.query = q
	f.mu.Unlock()
	return f.Answer, Error(f.Err)
}

// Calls is how often Contacts was called.
func (f *Klantinteracties) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Query is the query of the last call.
func (f *Klantinteracties) Query() klantinteracties.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.query
}

// Answers are the four connectors of a gateway; a nil one is not configured.
type Answers struct {
	BRP              *BRP              `json:"brp"`
	Zaken            *Zaken            `json:"zaken"`
	Salesforce       *Salesforce       `json:"salesforce"`
	Klantinteracties *Klantinteracties `json:"klantinteracties"`
}

// Read decodes the Answers in a JSON file strictly: a field the fakes or
// the connector types do not have (a renamed connector field) is an error,
// not silently dropped.
func Read(file string) (*Answers, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var a Answers
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("viewtest: %s: %w", file, err)
	}
	return &a, nil
}

// Sources wraps the fakes as cmd/klantbeeld wraps the real connectors, in
// the same order; a nil fake is view.Unconfigured. domainLookups is passed
// to view.NewZaken.
func (a *Answers) Sources(domainLookups int) []view.Source {
	out := []view.Source{
		view.Unconfigured(view.SourceBRP), view.Unconfigured(view.SourceZaken),
		view.Unconfigured(view.SourceSalesforce), view.Unconfigured(view.SourceKlantinteracties),
	}
	if a.BRP != nil {
		out[0] = view.NewBRP(a.BRP)
	}
	if a.Zaken != nil {
		out[1] = view.NewZaken(a.Zaken, domainLookups)
	}
	if a.Salesforce != nil {
		out[2] = view.NewSalesforce(a.Salesforce)
	}
	if a.Klantinteracties != nil {
		out[3] = view.NewKlantinteracties(a.Klantinteracties)
	}
	return out
}

// Calls is how often any fake was called.
func (a *Answers) Calls() int {
	n := 0
	if a.BRP != nil {
		n += a.BRP.Calls()
	}
	if a.Zaken != nil {
		n += a.Zaken.Calls()
	}
	if a.Salesforce != nil {
		n += a.Salesforce.Calls()
	}
	if a.Klantinteracties != nil {
		n += a.Klantinteracties.Calls()
	}
	return n
}
