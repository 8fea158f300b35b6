package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/klantbeeld/klantbeeld/auth"
)

// FuzzVerifyToken signs arbitrary header and claims JSON with a key the
// verifier trusts, so the fuzzer reaches the claim checks and not only the
// signature: never a panic, every refusal a *TokenError matching
// ErrInvalidToken with a known reason, and every accepted identity one the
// audit log can show as it is.
func FuzzVerifyToken(f *testing.F) {
	s := newECSigner(f, "e1")
	v := newVerifier(f, s.public(f))
	good := valid().json(f)
	for _, seed := range [][2]string{
		{s.header(), good},
		{`{"alg":"ES256","kid":"e1","kid":"e1"}`, good},
		{`{"alg":"ES256","kid":"e1","crit":["b64"],"b64":false}`, good},
		{`{"alg":"none","kid":"e1"}`, good},
		{`{"alg":"HS256","kid":"e1"}`, good},
		{s.header(), prepend(good, `"department":"kcc"`)},
		{s.header(), prepend(valid().with("exp", nil).json(f), `"exp":"1750003600"`)},
		{s.header(), valid().with("roles", "auditor medewerker").json(f)},
		{s.header(), valid().with("sub", " ").json(f)},
		{s.header(), valid().with("exp", unix(48*time.Hour)).json(f)},
		{s.header(), `{"sub":"x","exp":1e999}`},
		{s.header(), `{"a":` + strings.Repeat("[", 30)},
		{s.header(), ``},
		{``, ``},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, header, payload string) {
		id, err := v.VerifyToken(context.Background(), s.sign(t, header, payload))
		checkOutcome(t, id, err)
	})
}

// FuzzAuthenticateRawToken feeds arbitrary token text: the same promises
// for what never gets past the format and signature checks.
func FuzzAuthenticateRawToken(f *testing.F) {
	s := newECSigner(f, "e1")
	v := newVerifier(f, s.public(f))
	tok := s.token(f, valid())
	for _, seed := range []string{
		tok, tok + "x", tok[:len(tok)-4], strings.ReplaceAll(tok, ".", ".."), "a.b.c", "...", ".", "",
		"eyJhbGciOiJub25lIn0.e30.", "a.b.c.d.e", tok + "==", strings.ToUpper(tok),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Authenticate(context.Background(), bearerRequest(raw))
		if errors.Is(err, auth.ErrNoToken) {
			return // nothing token-like after "Bearer "
		}
		checkOutcome(t, id, err)
	})
}

func checkOutcome(t *testing.T, id auth.Identity, err error) {
	t.Helper()
	if err != nil {
		te, ok := errors.AsType[*auth.TokenError](err)
		if !ok || !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("refusal %v (%T) is not a *auth.TokenError matching ErrInvalidToken", err, err)
		}
		if !strings.HasPrefix(te.Error(), "invalid token: token ") || strings.ContainsFunc(te.Error(), unicode.IsControl) {
			t.Fatalf("refusal text %q is not a stable phrase", te.Error())
		}
		if id.Sub != "" || id.Roles != nil {
			t.Fatalf("refusal %v with an identity %+v", err, id)
		}
		return
	}
	if id.Sub == "" || strings.TrimSpace(id.Sub) != id.Sub {
		t.Fatalf("accepted sub %q", id.Sub)
	}
	for _, s := range append([]string{id.Sub, id.Name, id.Department, id.Organisation}, id.Roles...) {
		if strings.ContainsFunc(s, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) }) {
			t.Fatalf("accepted a claim with a control character: %q", s)
		}
	}
	for _, r := range id.Roles {
		if strings.TrimSpace(r) == "" {
			t.Fatalf("accepted an empty role in %q", id.Roles)
		}
	}
}
