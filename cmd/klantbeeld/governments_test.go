package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/fixtures"
	"github.com/klantbeeld/klantbeeld/fixtures/sources"
)

// startApp runs NewApp's gateway for cfg until the test ends.
func startApp(t *testing.T, cfg Config) *App {
	t.Helper()
	app, err := NewApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, app.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		app.Close(ctx)
	})
	return app
}

// reisdocumentenInItsZaak is a Burgerzaken employee's look-up of Suzanne
// for reisdocumenten in her own BURZA zaak, the context the purpose
// requires (verified against Zaken, where she is a betrokkene).
func reisdocumentenInItsZaak(t *testing.T) string {
	t.Helper()
	id := zaakOf(fixtures.BSNSuzanne, "BURZA")
	require.NotEmpty(t, id, "the scenario gives Suzanne a BURZA zaak")
	return `{"bsn":"` + fixtures.BSNSuzanne + `","purpose":"reisdocumenten","context":{"type":"zaak","id":"` + id + `"}}`
}

// tracingProxy stands in front of one fake source and keeps the
// traceparent of every request that reaches it.
type tracingProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

func newTracingProxy(t *testing.T, target string) *tracingProxy {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &tracingProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Header.Get("traceparent"))
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// via is target with its scheme and host replaced by the proxy's.
func (p *tracingProxy) via(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	pu, err := url.Parse(p.srv.URL)
	require.NoError(t, err)
	u.Scheme, u.Host = pu.Scheme, pu.Host
	return u.String()
}

func (p *tracingProxy) traceparents() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func TestATraceparentReachesEverySourceTheAuditEventAndTheAnswer(t *testing.T) {
	setup, err := newDemoSetup(t.TempDir(), "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	cfg := setup.Config
	s := &cfg.Sources
	brpProxy := newTracingProxy(t, s.BRP.URL)
	zakenProxy := newTracingProxy(t, s.Zaken.URL)
	sfProxy := newTracingProxy(t, s.Salesforce.URL)
	kiProxy := newTracingProxy(t, s.Klantinteracties.URL)
	s.BRP.URL = brpProxy.via(t, s.BRP.URL)
	s.Zaken.URL, s.Zaken.CatalogiURL = zakenProxy.via(t, s.Zaken.URL), zakenProxy.via(t, s.Zaken.CatalogiURL)
	s.Salesforce.URL, s.Salesforce.LoginURL = sfProxy.via(t, s.Salesforce.URL), sfProxy.via(t, s.Salesforce.LoginURL)
	s.Klantinteracties.URL = kiProxy.via(t, s.Klantinteracties.URL)
	app := startApp(t, cfg)

	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	tok, err := setup.IdP.Token(demoUserByLabel("burgerzaken"), tokenOptions{})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, app.URL()+"/v1/resident-views", strings.NewReader(reisdocumentenInItsZaak(t)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.True(t, strings.HasPrefix(resp.Header.Get("traceparent"), "00-"+trace+"-"), "returned: %q", resp.Header.Get("traceparent"))

	for name, p := range map[string]*tracingProxy{"brp": brpProxy, "zaken": zakenProxy, "salesforce": sfProxy, "klantinteracties": kiProxy} {
		seen := p.traceparents()
		require.NotEmpty(t, seen, "%s was called", name)
		for _, tp := range seen {
			assert.Regexp(t, `^00-`+trace+`-[0-9a-f]{16}-01$`, tp, "%s: every call carries the caller's trace", name)
		}
	}
	evs, err := audit.Events(context.Background(), app.Store, 0, 100)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	ev := evs[len(evs)-1]
	assert.Equal(t, trace, ev.TraceID, "the audit event carries it")
	assert.Equal(t, "00-"+trace+"-00f067aa0ba902b7-01", ev.ForeignOperation.Traceparent)
}

// pki is a CA with the server's certificate and clients' certificates
// whose subject serialNumber is an OIN, as PKIoverheid issues them.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test PKIoverheid CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	require.NoError(t, os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return p
}

// issue makes a certificate signed by the CA.
func (p *pki) issue(t *testing.T, subject pkix.Name, usage x509.ExtKeyUsage, ips ...net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: ips, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serverFiles writes a server certificate for 127.0.0.1 and its key.
func (p *pki) serverFiles(t *testing.T) (string, string) {
	t.Helper()
	c := p.issue(t, pkix.Name{CommonName: "klantbeeld"}, x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	certFile, keyFile := filepath.Join(p.dir, "server.pem"), filepath.Join(p.dir, "server-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600))
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return certFile, keyFile
}

func (p *pki) client(t *testing.T, certs ...tls.Certificate) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, Certificates: certs}}}
}

func TestServeOverTLSWithClientCertificatesBoundToTheOIN(t *testing.T) {
	setup, err := newDemoSetup(t.TempDir(), "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	p := newPKI(t)
	cfg := setup.Config
	cfg.TLS.CertFile, cfg.TLS.KeyFile = p.serverFiles(t)
	cfg.TLS.ClientCAFile = p.caFile
	require.NoError(t, cfg.Validate())
	app := startApp(t, cfg)
	require.True(t, strings.HasPrefix(app.URL(), "https://"), app.URL())
	base := "https://" + app.Addr().String()

	uwv := demoOrganisation
	tok, err := setup.IdP.Token(uwv, tokenOptions{})
	require.NoError(t, err)
	view := func(c *http.Client, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+"/v1/resident-views", strings.NewReader(`{"bsn":"999993653","purpose":"uwv-werk-en-inkomen"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	own := p.issue(t, pkix.Name{CommonName: "UWV", SerialNumber: uwv.Organisation}, x509.ExtKeyUsageClientAuth)
	status, body := view(p.client(t, own), tok)
	assert.Equal(t, http.StatusOK, status, "the certificate's OIN is the token's: %s", body)

	other := p.issue(t, pkix.Name{CommonName: "Gemeente B", SerialNumber: "00000001000000000002"}, x509.ExtKeyUsageClientAuth)
	status, body = view(p.client(t, other), tok)
	assert.Equal(t, http.StatusUnauthorized, status, "%s", body)
	assert.Contains(t, body, "client certificate does not match")
	evs, err := audit.Events(context.Background(), app.Store, 0, 100)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, evs[len(evs)-1].Status, "the refusal is recorded")

	// Employees' front ends come without a certificate.
	emp, err := setup.IdP.Token(demoUserByLabel("burgerzaken"), tokenOptions{})
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/resident-views", strings.NewReader(reisdocumentenInItsZaak(t)))
	req.Header.Set("Authorization", "Bearer "+emp)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client(t).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// TLS 1.2 and 1.3 only, 1.2 with the NCSC's good suites only.
	for _, tt := range []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2 with ECDHE and AES-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2 with CBC", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.RootCAs = p.pool
			conn, err := tls.Dial("tcp", app.Addr().String(), tt.cfg)
			if tt.ok {
				require.NoError(t, err)
				conn.Close()
				return
			}
			require.Error(t, err)
		})
	}

	// Plain HTTP is not answered on the TLS port.
	resp, err = http.Get("http://" + app.Addr().String() + "/healthz")
	if err == nil {
		resp.Body.Close()
		assert.NotEqual(t, http.StatusOK, resp.StatusCode)
	}
}

func TestOrganisationsMustPresentACertificateWhenRequired(t *testing.T) {
	setup, err := newDemoSetup(t.TempDir(), "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	p := newPKI(t)
	cfg := setup.Config
	cfg.TLS.CertFile, cfg.TLS.KeyFile = p.serverFiles(t)
	cfg.TLS.ClientCAFile, cfg.TLS.RequireClientCertificate = p.caFile, true
	app := startApp(t, cfg)
	tok, err := setup.IdP.Token(demoOrganisation, tokenOptions{})
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, "https://"+app.Addr().String()+"/v1/resident-views", strings.NewReader(`{"bsn":"999993653","purpose":"uwv-werk-en-inkomen"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client(t).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestTLSAndAccessConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		wantKey string
	}{
		{"a certificate without its key", []string{"KLANTBEELD_TLS_CERT_FILE=/etc/kb/cert.pem"}, "tls.key_file"},
		{"client certificates without TLS", []string{"KLANTBEELD_TLS_CLIENT_CA_FILE=/etc/kb/ca.pem"}, "tls.client_ca_file"},
		{"certificates required without a CA", []string{"KLANTBEELD_TLS_CERT_FILE=/c", "KLANTBEELD_TLS_KEY_FILE=/k", "KLANTBEELD_TLS_REQUIRE_CLIENT_CERTIFICATE=true"}, "tls.require_client_certificate"},
		{"TLS and plain HTTP both", []string{"KLANTBEELD_TLS_CERT_FILE=/c", "KLANTBEELD_TLS_KEY_FILE=/k", "KLANTBEELD_TLS_PLAIN_HTTP=true"}, "tls.plain_http"},
		{"a bool that is none", []string{"KLANTBEELD_TLS_PLAIN_HTTP=yes please"}, "tls.plain_http"},
		{"an FSC Manager without keys", []string{"KLANTBEELD_AUTH_FSC_ISSUER=https://manager.example", "KLANTBEELD_AUTH_FSC_AUDIENCE=klantbeeld"}, "auth.fsc.jwks_url"},
		{"an FSC Manager without issuer", []string{"KLANTBEELD_AUTH_FSC_JWKS_FILE=/etc/kb/fsc.json", "KLANTBEELD_AUTH_FSC_AUDIENCE=klantbeeld"}, "auth.fsc.issuer"},
		{"every origin", []string{"KLANTBEELD_CORS_ALLOWED_ORIGINS=*"}, "cors.allowed_origins"},
		{"an origin with a path", []string{"KLANTBEELD_CORS_ALLOWED_ORIGINS=https://app.example/x"}, "cors.allowed_origins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, validYAML), tt.env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantKey)
		})
	}
	for _, tt := range []struct{ name, yaml, wantKey string }{
		{"a rate limit of nothing", "rate_limits:\n  bijstand: { burst: 0, every: 1s }\n", "rate_limits.bijstand.burst"},
		{"a rate limit without a time", "rate_limits:\n  bijstand: { burst: 5, every: soon }\n", "rate_limits.bijstand.every"},
		{"a rate limit for no purpose", "rate_limits:\n  Bijstand: { burst: 5, every: 1s }\n", "rate_limits.Bijstand"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, validYAML+tt.yaml), nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantKey)
		})
	}

	// Plain HTTP only on loopback, or when the file says so.
	cfg, err := LoadConfig(writeConfig(t, validYAML), nil)
	require.NoError(t, err)
	err = cfg.checkListen()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listen")
	assert.Contains(t, err.Error(), "tls.plain_http")
	var stderr strings.Builder
	assert.Equal(t, 1, Main(context.Background(), []string{"serve", "-config", writeConfig(t, validYAML)}, io.Discard, &stderr, nil), "serve refuses it")
	assert.Contains(t, stderr.String(), "is not a loopback address")
	for _, env := range [][]string{{"KLANTBEELD_TLS_PLAIN_HTTP=true"}, {"KLANTBEELD_LISTEN=127.0.0.1:9090"}, {"KLANTBEELD_LISTEN=[::1]:9090"}, {"KLANTBEELD_LISTEN=localhost:9090"}, {"KLANTBEELD_TLS_CERT_FILE=/c", "KLANTBEELD_TLS_KEY_FILE=/k"}} {
		cfg, err := LoadConfig(writeConfig(t, validYAML), env)
		require.NoError(t, err)
		assert.NoError(t, cfg.checkListen(), "%v", env)
	}

	cfg, err = LoadConfig(writeConfig(t, validYAML+"rate_limits:\n  uwv-werk-en-inkomen: { burst: 30, every: 2s }\n  \"*\": { burst: 60, every: 1s }\n"),
		[]string{"KLANTBEELD_CORS_ALLOWED_ORIGINS=https://kcc.gemeente.example, http://localhost:5173", "KLANTBEELD_TLS_PLAIN_HTTP=true"})
	require.NoError(t, err)
	assert.Equal(t, []string{"https://kcc.gemeente.example", "http://localhost:5173"}, cfg.CORS.AllowedOrigins)
	assert.Equal(t, 30, cfg.callerLimits()["uwv-werk-en-inkomen"].Burst)
	assert.Equal(t, 2*time.Second, cfg.callerLimits()["uwv-werk-en-inkomen"].Every)
	assert.Equal(t, 60, cfg.callerLimits()["*"].Burst)
}

func TestAnFSCManagersTokenThroughTheInway(t *testing.T) {
	dir := t.TempDir()
	setup, err := newDemoSetup(dir, "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	manager, err := newDemoIdP("https://manager.fsc.demo.example", filepath.Join(dir, "manager-key.pem"), time.Now)
	require.NoError(t, err)
	jwks, err := manager.JWKS()
	require.NoError(t, err)
	jwksFile := filepath.Join(dir, "manager-jwks.json")
	require.NoError(t, os.WriteFile(jwksFile, jwks, 0o600))
	cfg := setup.Config
	cfg.Auth.FSC = FSCConfig{Issuer: "https://manager.fsc.demo.example", Audience: "https://inway.demo.example", JWKSFile: jwksFile}
	require.NoError(t, cfg.Validate())
	app := startApp(t, cfg)

	// The FSC access token names the outway's organisation by its peer id, the OIN.
	tok, err := manager.Token(demoUser{Sub: demoOrganisation.Organisation}, tokenOptions{Audience: "https://inway.demo.example", TTL: 5 * time.Minute})
	require.NoError(t, err)
	send := func(header, value string) (int, http.Header, string) {
		req, err := http.NewRequest(http.MethodPost, app.URL()+"/v1/resident-views", strings.NewReader(`{"bsn":"999993653","purpose":"uwv-werk-en-inkomen"}`))
		require.NoError(t, err)
		req.Header.Set(header, value)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Fsc-Transaction-Id", "01JDB3F7Q9X2M5V8K4T6N1R0PZ")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	status, header, body := send("Fsc-Authorization", tok)
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Equal(t, "01JDB3F7Q9X2M5V8K4T6N1R0PZ", header.Get("Fsc-Transaction-Id"))
	evs, err := audit.Events(context.Background(), app.Store, 0, 100)
	require.NoError(t, err)
	ev := evs[len(evs)-1]
	assert.Equal(t, demoOrganisation.Organisation, ev.Actor.Organisation)
	require.NotNil(t, ev.ForeignOperation)
	assert.Equal(t, "01JDB3F7Q9X2M5V8K4T6N1R0PZ", ev.ForeignOperation.FSCTransactionID)

	status, _, body = send("Authorization", "Bearer "+tok)
	assert.Equal(t, http.StatusUnauthorized, status, "the manager's token is no bearer token of the identity provider: %s", body)
}
