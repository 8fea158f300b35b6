package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/fixtures/sources"
)

// syncBuffer is a bytes.Buffer safe to read while Main writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDemoPrintsRequestsThatWork runs `klantbeeld demo` as `make run` does
// and executes the printed curl command for each role.
func TestDemoPrintsRequestsThatWork(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"demo", "-listen", "127.0.0.1:0", "-data", dir}, &stdout, &stderr, nil)
	}()
	waitFor(t, "the demo's printed requests", func() bool { return strings.Contains(stdout.String(), "tokens are also in") })

	out := stdout.String()
	tokens := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(KB_[A-Z_]+)='([^']+)'$`).FindAllStringSubmatch(out, -1) {
		tokens[m[1]] = m[2]
	}
	post := func(url, token, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tokens[token])
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, b
	}
	// The KCC look-up is made in a contact session: the printed command
	// opens it and keeps its id in $KB_SESSION, which the next one uses.
	session := regexp.MustCompile(`(?m)^KB_SESSION=\$\(curl -s (\S+) -H "Authorization: Bearer \$(KB_[A-Z_]+)" -H 'Content-Type: application/json' -d '([^']+)' \| sed -E '[^']+'\)$`).FindStringSubmatch(out)
	require.NotNil(t, session, "a command that opens a contact session:\n%s", out)
	status, body := post(session[1], session[2], session[3])
	require.Equal(t, http.StatusCreated, status, "%s", body)
	var opened struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &opened))
	out = strings.ReplaceAll(out, `'"$KB_SESSION"'`, opened.ID)
	wrapUpAndSearch := func() {
		// After the KCC look-up in it: the wrap-up, then Burgerzaken's callbacks.
		wrap := regexp.MustCompile(`(?m)^curl -s (\S+)/\$KB_SESSION/wrap-up -H "Authorization: Bearer \$(KB_[A-Z_]+)" -H 'Idempotency-Key: [^']+' -H 'Content-Type: application/json' -d '([^']+)'$`).FindStringSubmatch(out)
		require.NotNil(t, wrap, "a wrap-up command:\n%s", out)
		status, body := post(wrap[1]+"/"+opened.ID+"/wrap-up", wrap[2], wrap[3])
		assert.Equal(t, http.StatusCreated, status, "%s", body)
		search := regexp.MustCompile(`(?m)^curl -s (\S+/v1/callbacks/_search) -d '([^']+)' -H 'Content-Type: application/json' -H "Authorization: Bearer \$(KB_[A-Z_]+)"$`).FindStringSubmatch(out)
		require.NotNil(t, search, "a callback search:\n%s", out)
		status, body = post(search[1], search[3], search[2])
		assert.Equal(t, http.StatusOK, status, "%s", body)
		assert.Contains(t, string(body), "Terugbellen over de nieuwe aanvraag", "the demo's callback is in Burgerzaken's list")
	}

	curls := regexp.MustCompile(`(?m)^curl -s (\S+) -H "Authorization: Bearer \$(KB_[A-Z_]+)" -H 'Content-Type: application/json' -d '([^']+)'$`).FindAllStringSubmatch(out, -1)
	require.Len(t, curls, 7, "a curl command for burgerzaken, sociale zaken, kcc, auditor, privacy officer, an organisation and a resident:\n%s", out)
	want := map[string]int{"KB_BURGERZAKEN": 200, "KB_SOCIALE_ZAKEN": 200, "KB_KCC": 200, "KB_AUDITOR": 403, "KB_PRIVACY_OFFICER": 403, "KB_UWV": 200, "KB_RESIDENT": 200}
	for _, c := range curls {
		status, body := post(c[1], c[2], c[3])
		assert.Equal(t, want[c[2]], status, "%s: %s", c[2], body)
		switch {
		case c[2] == "KB_RESIDENT":
			assert.Contains(t, string(body), `"department":"burgerzaken","purpose":"reisdocumenten","description":"Aanvraag en uitgifte van reisdocumenten`, "the resident sees the Burgerzaken look-up printed above, in plain Dutch")
			assert.NotContains(t, string(body), "mjansen", "never the employee's name")
		case c[2] == "KB_UWV":
			assert.Contains(t, string(body), `"zaken":{"status":"denied"}`, "an organisation gets what its purpose grants: %s", body)
			assert.Contains(t, string(body), `"geboorte"`)
			assert.NotContains(t, string(body), `"partners"`)
			assert.Contains(t, string(body), `"auditSeq"`)
		case status == 200:
			assert.Contains(t, string(body), `"auditSeq"`)
		}
	}
	wrapUpAndSearch()
	vkey := regexp.MustCompile(`(?m)^klantbeeld/audit\+[0-9a-f]{8}\+\S+$`).FindString(out)
	assert.NotEmpty(t, vkey, "the demo prints the checkpoints' verifier key:\n%s", out)
	env, err := os.ReadFile(filepath.Join(dir, "demo", "tokens.env"))
	require.NoError(t, err)
	assert.Contains(t, string(env), "export KB_KCC=")
	_, err = os.Stat(filepath.Join(dir, "audit.db"))
	require.NoError(t, err, "the SQLite audit log is under the data folder")

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, "stderr: %s", stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("demo did not stop")
	}
}

// TestServeWithConfigFile runs `klantbeeld serve -config FILE` against the
// fake sources, with a secret from the environment.
func TestServeWithConfigFile(t *testing.T) {
	dir := t.TempDir()
	setup, err := newDemoSetup(dir, "", sources.Options{})
	require.NoError(t, err)
	defer setup.Sources.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()

	c := setup.Config
	cfgFile := filepath.Join(dir, "klantbeeld.yaml")
	yaml := fmt.Sprintf(`listen: %q
log: { level: warn, format: json }
auth: { issuer: %q, audience: %q, jwks_file: %q }
audit: { dsn: "sqlite://%s/serve.db", pseudonym_key_file: %q, signing_key_file: %q }
sources:
  brp: { url: %q, timeout: 2s }
  zaken: { url: %q, catalogi_url: %q, client_id: %q, secret: %q }
  salesforce: { url: %q, login_url: %q, consumer_key: %q, username: %q, private_key_file: %q }
  klantinteracties: { url: %q, token: %q }
`, addr, c.Auth.Issuer, c.Auth.Audience, c.Auth.JWKSFile, filepath.ToSlash(dir), filepath.Join(dir, "serve.key"), filepath.Join(dir, "keys", "checkpoint.key"),
		c.Sources.BRP.URL,
		c.Sources.Zaken.URL, c.Sources.Zaken.CatalogiURL, c.Sources.Zaken.ClientID, c.Sources.Zaken.Secret,
		c.Sources.Salesforce.URL, c.Sources.Salesforce.LoginURL, c.Sources.Salesforce.ConsumerKey, c.Sources.Salesforce.Username, c.Sources.Salesforce.PrivateKeyFile,
		c.Sources.Klantinteracties.URL, c.Sources.Klantinteracties.Token)
	require.NoError(t, os.WriteFile(cfgFile, []byte(yaml), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	environ := []string{"KLANTBEELD_SOURCES_BRP_API_KEY=" + c.Sources.BRP.APIKey} // the secret comes from the environment
	go func() { done <- Main(ctx, []string{"serve", "-config", cfgFile}, io.Discard, &stderr, environ) }()
	waitFor(t, "serve to be ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	tok, err := setup.IdP.Token(demoUserByLabel("burgerzaken"), tokenOptions{})
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/resident-views", strings.NewReader(`{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"zaak","id":"a0000000-0000-4000-8000-000000000101"}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"brp":{"status":"ok"`)
	assert.NotContains(t, stderr.String(), "999993653", "no BSN in any log line")

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, "stderr: %s", stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	var stderr bytes.Buffer
	code := Main(context.Background(), []string{"serve", "-config", writeConfig(t, validYAML)}, io.Discard, &stderr, []string{"KLANTBEELD_SOURCES_KLANTINTERACTIES_URL=not a url"})
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "sources.klantinteracties.url")

	stderr.Reset()
	assert.Equal(t, 2, Main(context.Background(), []string{"serve"}, io.Discard, &stderr, nil))
	assert.Equal(t, 2, Main(context.Background(), []string{"nonsense"}, io.Discard, &stderr, nil))
	assert.Equal(t, 0, Main(context.Background(), []string{"serve", "-h"}, io.Discard, &stderr, nil))
}

func TestPolicyCommands(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, 0, Main(context.Background(), []string{"policy", "test"}, &out, io.Discard, nil), out.String())
	assert.Contains(t, out.String(), "PASS guard invariants")
	assert.NotContains(t, out.String(), "FAIL")

	in := filepath.Join(t.TempDir(), "input.json")
	require.NoError(t, os.WriteFile(in, []byte(`{"actor":{"sub":"x","department":"kcc","roles":["medewerker"]},"action":"resident-view","purpose":"klantcontact","context":{"type":"contact-session","id":"s-1"}}`), 0o600))
	out.Reset()
	require.Equal(t, 0, Main(context.Background(), []string{"policy", "eval", "-input", in}, &out, io.Discard, nil))
	assert.Contains(t, out.String(), `"allow": true`)
	assert.Contains(t, out.String(), `"existence_only": [`)

	// A bundle that fails its own tests fails the command.
	dir := t.TempDir()
	for _, f := range []string{"decision.rego", "decision_test.rego", "data.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "policies", f))
		require.NoError(t, err)
		if f == "data.json" {
			b = bytes.Replace(b, []byte(`"max_vertrouwelijkheid": "geheim"`), []byte(`"max_vertrouwelijkheid": "zeer_geheim"`), 1)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
	}
	out.Reset()
	assert.Equal(t, 1, Main(context.Background(), []string{"policy", "test", "-dir", dir}, &out, io.Discard, nil))
	assert.Contains(t, out.String(), "FAIL klantbeeld_test.test_bijstand_row")
}
