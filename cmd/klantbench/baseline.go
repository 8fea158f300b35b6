package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
)

// sourceSet is how the fakes are reached: what the gateway's config says
// of them, handed to the baseline process as JSON.
type sourceSet struct {
	BRPURL                string
	BRPKey                string
	ZakenURL              string
	CatalogiURL           string
	ZakenClientID         string
	ZakenSecret           string
	SalesforceURL         string
	SalesforceKey         string
	SalesforceUser        string
	SalesforceKeyFile     string
	KlantinteractiesURL   string
	KlantinteractiesToken string
	// The caller and purpose of every view of the load.
	Actor   policies.Actor
	Purpose string
}

// connect builds the four sources as cmd/klantbeeld's connectSources
// does, with the connectors' default timeouts, retries and breakers.
func (s sourceSet) connect() ([]view.Source, error) {
	b, err := brp.New(brp.Config{URL: s.BRPURL, APIKey: s.BRPKey})
	if err != nil {
		return nil, err
	}
	z, err := zaken.New(zaken.Config{ZakenURL: s.ZakenURL, CatalogiURL: s.CatalogiURL, ClientID: s.ZakenClientID, Secret: s.ZakenSecret})
	if err != nil {
		return nil, err
	}
	pemKey, err := os.ReadFile(s.SalesforceKeyFile)
	if err != nil {
		return nil, err
	}
	key, err := salesforce.ParsePrivateKey(pemKey)
	if err != nil {
		return nil, err
	}
	sf, err := salesforce.New(salesforce.Config{URL: s.SalesforceURL, LoginURL: s.SalesforceURL, ConsumerKey: s.SalesforceKey, Username: s.SalesforceUser, PrivateKey: key})
	if err != nil {
		return nil, err
	}
	ki, err := klantinteracties.New(klantinteracties.Config{URL: s.KlantinteractiesURL, Token: s.KlantinteractiesToken})
	if err != nil {
		return nil, err
	}
	return []view.Source{view.NewBRP(b), view.NewZaken(z, 0), view.NewSalesforce(sf), view.NewKlantinteracties(ki)}, nil
}

// baseline is the plain fan-out the gateway is measured against: for
// every POST it makes the same source calls as the gateway (the same
// connectors and view fetchers, with the decision the policy gives this
// caller and purpose, made once at start) and answers with the composed
// view. It has no token check, request validation, policy evaluation,
// audit write or access log.
type baseline struct {
	sources []view.Source
	dec     policies.Decision
	user    view.User
}

func (b *baseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		BSN     string `json:"bsn"`
		Purpose string `json:"purpose"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f := view.Fetch(r.Context(), b.sources, view.Request{BSN: req.BSN, Purpose: req.Purpose, User: b.user}, b.dec, nil)
	v, _ := f.Compose(b.dec, time.Now())
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// runBaseline is `klantbench baseline -sources FILE -listen ADDR`: the
// baseline proxy as a process of its own, so that its CPU and memory are
// measured as the gateway's are.
func runBaseline(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	file := fs.String("sources", "", "`file` with the sources (JSON, written by klantbench)")
	listen := fs.String("listen", "127.0.0.1:0", "`address` to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	var set sourceSet
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	srcs, err := set.connect()
	if err != nil {
		return err
	}
	engine, err := policies.NewEngine(ctx, policies.Embedded())
	if err != nil {
		return err
	}
	// The context the purpose requires, as the gateway's views name it
	// (the baseline verifies nothing).
	justified := &policies.Context{Type: policies.ContextContactSession, ID: "bench"}
	dec, err := engine.Decide(ctx, policies.Input{Actor: set.Actor, Action: policies.ActionResidentView, Purpose: set.Purpose, Context: justified})
	if err != nil {
		return err
	}
	if !dec.Allow {
		return fmt.Errorf("the policy refuses %s the purpose %s", set.Actor.Department, set.Purpose)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           &baseline{sources: srcs, dec: dec, user: view.User{ID: set.Actor.Sub}},
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
