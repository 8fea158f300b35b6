package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/fixtures/sources"
	"github.com/klantbeeld/klantbeeld/policies"
)

// geboorteBundle is the embedded bundle with geboorte added to the BRP
// fields of purpose klantcontact.
func geboorteBundle(t *testing.T) policies.Bundle {
	t.Helper()
	b := policies.Embedded()
	files := map[string][]byte{}
	for k, v := range b.Files {
		files[k] = v
	}
	data := bytes.Replace(files["data.json"], []byte(`"fields": ["naam", "adressering"]`), []byte(`"fields": ["naam", "adressering", "geboorte"]`), 1)
	require.NotEqual(t, files["data.json"], data, "the klantcontact BRP fields are where the test expects them")
	files["data.json"] = data
	tests := bytes.Replace(files["decision_test.rego"], []byte(`{f | some f in d.sources.brp.fields} == {"naam", "adressering"}`), []byte(`{f | some f in d.sources.brp.fields} == {"naam", "adressering", "geboorte"}`), 1)
	require.NotEqual(t, files["decision_test.rego"], tests, "the bundle's own test of the klantcontact row changes with it")
	files["decision_test.rego"] = tests
	return policies.Bundle{Files: files}
}

// activateInStore does what a privacy officer's activation leaves in the
// audit database: the version stored and an activation chained to the one
// it replaces.
func activateInStore(t *testing.T, store audit.PolicyStore, b policies.Bundle, previous, reason string) {
	t.Helper()
	v := policies.NewStoredVersion(b)
	require.NoError(t, store.PutPolicyVersion(context.Background(), audit.PolicyVersion{ID: v.ID, Files: v.Files}))
	_, err := store.AddPolicyActivation(context.Background(), audit.PolicyActivation{Version: v.ID, Previous: previous, By: "psmit", At: time.Now(), Reason: reason})
	require.NoError(t, err)
}

// TestTheEmbeddedBundleIsVersionOneAndTheLatestActivationRunsAfterARestart:
// a new log records the configured bundle as its first activation; a
// version activated later is what the gateway runs after a restart.
func TestTheEmbeddedBundleIsVersionOneAndTheLatestActivationRunsAfterARestart(t *testing.T) {
	dir := t.TempDir()
	setup, err := newDemoSetup(dir, "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })

	app, err := NewApp(context.Background(), setup.Config, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	embedded := policies.Embedded().Version()
	assert.Equal(t, embedded, app.Engine.Version())
	store := app.Store.(audit.PolicyStore)
	first, err := store.LatestPolicyActivation(context.Background())
	require.NoError(t, err)
	assert.Equal(t, embedded, first.Version)
	assert.Equal(t, initialActivator, first.By)
	assert.Empty(t, first.Previous)

	next := geboorteBundle(t)
	activateInStore(t, store, next, embedded, "KCC needs the date of birth to tell residents apart")
	require.NoError(t, app.Close(context.Background()))

	again, err := NewApp(context.Background(), setup.Config, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer again.Close(context.Background())
	assert.Equal(t, next.Version(), again.Engine.Version(), "the latest activated version survives a restart")
	acts, err := again.Store.(audit.PolicyStore).PolicyActivations(context.Background(), 0, 10)
	require.NoError(t, err)
	assert.Len(t, acts, 2, "a restart activates nothing new")
}

// TestAVersionActivatedElsewhereIsRunWithinTheInterval: two gateways on one
// SQLite log; a version activated through one reaches the other without a
// restart, within its poll interval.
func TestAVersionActivatedElsewhereIsRunWithinTheInterval(t *testing.T) {
	dir := t.TempDir()
	setup, err := newDemoSetup(dir, "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	cfg := setup.Config
	cfg.Policies.PollInterval = Duration{Duration: 200 * time.Millisecond}
	one, err := NewApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer one.Close(context.Background())
	two, err := NewApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer two.Close(context.Background())

	next := geboorteBundle(t)
	_, err = one.Engine.Activate(context.Background(), next)
	require.NoError(t, err)
	activateInStore(t, one.Store.(audit.PolicyStore), next, policies.Embedded().Version(), "test")

	start := time.Now()
	require.Eventually(t, func() bool { return two.Engine.Version() == next.Version() }, time.Minute, 20*time.Millisecond,
		"the second gateway runs the new version")
	t.Logf("the second gateway followed after %s", time.Since(start).Round(time.Millisecond))
}

// TestAPrivacyOfficerActivatesThroughTheAPIAndEveryGatewayFollows: a PUT
// on one gateway changes what the next view shows there and, within the
// poll interval, on a second gateway on the same log; the activation is in
// the history with its reason.
func TestAPrivacyOfficerActivatesThroughTheAPIAndEveryGatewayFollows(t *testing.T) {
	dir := t.TempDir()
	setup, err := newDemoSetup(dir, "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	cfg := setup.Config
	cfg.Policies.PollInterval = Duration{Duration: 200 * time.Millisecond}
	var apps []*App
	for range 2 {
		app, err := NewApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.NoError(t, app.Start())
		t.Cleanup(func() { app.Close(context.Background()) })
		apps = append(apps, app)
	}
	call := func(app *App, method, path, label, body string) (int, string) {
		tok, err := setup.IdP.Token(demoUserByLabel(label), tokenOptions{})
		require.NoError(t, err)
		req, _ := http.NewRequest(method, app.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// One contact session, opened on the first gateway, serves the views
	// on both: they share the database.
	status, body := call(apps[0], http.MethodPost, "/v1/contact-sessions", "kcc", `{"kanaal":"telefoon"}`)
	require.Equal(t, http.StatusCreated, status, body)
	var session struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(body), &session))
	kccView := func(app *App) string {
		status, body := call(app, http.MethodPost, "/v1/resident-views", "kcc", `{"bsn":"999993653","purpose":"klantcontact","context":{"type":"contact-session","id":"`+session.ID+`"}}`)
		require.Equal(t, 200, status, body)
		return body
	}
	require.NotContains(t, kccView(apps[1]), `"geboorte"`)

	files := map[string]string{}
	for k, v := range geboorteBundle(t).Files {
		files[k] = string(v)
	}
	put, err := json.Marshal(map[string]any{"files": files, "reason": "KCC needs the date of birth to tell residents apart"})
	require.NoError(t, err)
	status, body = call(apps[0], http.MethodPut, "/v1/policies", "privacy-officer", string(put))
	require.Equal(t, 200, status, body)
	assert.Contains(t, kccView(apps[0]), `"geboorte"`, "the next request on this gateway runs the new version")
	require.Eventually(t, func() bool { return strings.Contains(kccView(apps[1]), `"geboorte"`) }, time.Minute, 50*time.Millisecond,
		"the other gateway runs it, without a restart (within the interval plus its checks, which are slow under -race)")

	status, body = call(apps[1], http.MethodGet, "/v1/policies/history", "privacy-officer", "")
	require.Equal(t, 200, status, body)
	assert.Contains(t, body, "KCC needs the date of birth")
	status, _ = call(apps[1], http.MethodPut, "/v1/policies", "kcc", string(put))
	assert.Equal(t, 403, status, "only a privacy officer")
}
