package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/fixtures/sources"
)

// TestDemoListensOnLoopbackByDefault: the demo prints working tokens, so it
// must not be reachable from other machines unless asked.
func TestDemoListensOnLoopbackByDefault(t *testing.T) {
	var stderr bytes.Buffer
	assert.Equal(t, 0, Main(context.Background(), []string{"demo", "-h"}, io.Discard, &stderr, nil))
	assert.Contains(t, stderr.String(), `(default "127.0.0.1:8080")`)
}

// TestDemoTokensSurviveARestart: the signing key is kept under data/demo
// (0600), so a token printed by one run is accepted by the next.
func TestDemoTokensSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	first, err := newDemoSetup(dir, "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	tok, err := first.IdP.Token(demoUserByLabel("kcc"), tokenOptions{})
	require.NoError(t, err)
	first.Sources.Close()

	st, err := os.Stat(demoKeyFile(dir))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	second, err := newDemoSetup(dir, "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	defer second.Sources.Close()
	set, err := jwk.ReadFile(second.Config.Auth.JWKSFile)
	require.NoError(t, err)
	_, err = jwt.ParseString(tok, jwt.WithKeySet(set), jwt.WithValidate(true))
	assert.NoError(t, err, "a token of the first run verifies with the keys of the second")
}

// TestDemoTokenCommand mints a token for another department, role and
// expiry with the demo's key, and the demo's gateway accepts it.
func TestDemoTokenCommand(t *testing.T) {
	dir := t.TempDir()
	setup, err := newDemoSetup(dir, "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	app, err := NewApp(context.Background(), setup.Config, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, app.Start())
	t.Cleanup(func() { app.Close(context.Background()) })

	var out, stderr bytes.Buffer
	code := Main(context.Background(), []string{"demo", "token", "-data", dir, "-sub", "jdoe", "-department", "burgerzaken", "-roles", "medewerker", "-ttl", "30m"}, &out, &stderr, nil)
	require.Equal(t, 0, code, stderr.String())
	raw := strings.TrimSpace(out.String())
	tok, err := jwt.ParseString(raw, jwt.WithVerify(false))
	require.NoError(t, err)
	assert.Equal(t, "jdoe", tok.Subject())
	dept, _ := tok.Get("department")
	assert.Equal(t, "burgerzaken", dept)
	assert.WithinDuration(t, time.Now().Add(30*time.Minute), tok.Expiration(), time.Minute)

	req, err := http.NewRequest(http.MethodPost, app.URL()+"/v1/resident-views", strings.NewReader(`{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"zaak","id":"a0000000-0000-4000-8000-000000000101"}}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "%s", body)

	// An organisation's token, bound to the purposes of its scope.
	out.Reset()
	code = Main(context.Background(), []string{"demo", "token", "-data", dir, "-sub", demoOrganisation.Organisation, "-organisation", demoOrganisation.Organisation, "-scope", "uwv-werk-en-inkomen", "-roles", ""}, &out, &stderr, nil)
	require.Equal(t, 0, code, stderr.String())
	org := strings.TrimSpace(out.String())
	for purpose, want := range map[string]int{"uwv-werk-en-inkomen": 200, "reisdocumenten": 403} {
		req, err := http.NewRequest(http.MethodPost, app.URL()+"/v1/resident-views", strings.NewReader(`{"bsn":"999993653","purpose":"`+purpose+`"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+org)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "%s: %s", purpose, body)
	}

	// Without a demo key there is nothing to sign with: a clear error.
	stderr.Reset()
	assert.Equal(t, 1, Main(context.Background(), []string{"demo", "token", "-data", t.TempDir(), "-sub", "x"}, io.Discard, &stderr, nil))
	assert.Contains(t, stderr.String(), "no demo signing key")
	assert.Equal(t, 2, Main(context.Background(), []string{"demo", "token", "-data", dir}, io.Discard, io.Discard, nil), "-sub is required")
	assert.Equal(t, 2, Main(context.Background(), []string{"demo", "token", "-data", dir, "-sub", "x", "-ttl", "24h"}, io.Discard, io.Discard, nil), "longer than the gateway accepts")
}

// TestPolicyEvalExampleInput runs the README's example of `klantbeeld
// policy eval` on the file the README names.
func TestPolicyEvalExampleInput(t *testing.T) {
	var out bytes.Buffer
	in := filepath.Join("..", "..", "policies", "examples", "klantcontact-input.json")
	require.Equal(t, 0, Main(context.Background(), []string{"policy", "eval", "-input", in}, &out, io.Discard, nil))
	assert.Contains(t, out.String(), `"allow": true`)
	assert.Contains(t, out.String(), `"processing_activity": "https://register.gemeente.example/verwerkingsactiviteiten/kcc-klantcontact"`)
	assert.NotContains(t, out.String(), `"salesforce"`, "a source the input did not ask for is not in the decision")
}
