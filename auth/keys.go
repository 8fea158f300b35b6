package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// errUnknownKID: no usable key of the JWKS has the token's kid.
var errUnknownKID = errors.New("kid not in the JWKS")

// loadFunc reads the provider's JWKS afresh and keeps its usable keys.
type loadFunc func(ctx context.Context) (jwk.Set, error)

// keyring holds the provider's keys and refetches them, at most once per
// minGap: when a token names a kid it does not know (a key rotation) and
// when the keys are older than maxAge (a key withdrawal). One load runs at
// a time; callers with an unknown kid wait for a load in flight instead of
// starting another.
type keyring struct {
	load   loadFunc
	now    func() time.Time
	minGap time.Duration
	maxAge time.Duration

	keys atomic.Pointer[loadedKeys]
	busy chan struct{} // holds a token while a load runs

	mu          sync.Mutex
	lastAttempt time.Time
}

type loadedKeys struct {
	set jwk.Set
	at  time.Time
}

// newKeyring loads the keys once; without them nothing can be verified.
func newKeyring(ctx context.Context, load loadFunc, now func() time.Time, minGap, maxAge time.Duration) (*keyring, error) {
	set, err := load(ctx)
	if err != nil {
		return nil, err
	}
	k := &keyring{load: load, now: now, minGap: minGap, maxAge: maxAge, busy: make(chan struct{}, 1)}
	t := now()
	k.keys.Store(&loadedKeys{set: set, at: t})
	k.lastAttempt = t
	return k, nil
}

// current returns the keys to verify with now, refetched first when they
// are older than maxAge.
func (k *keyring) current(ctx context.Context) *loadedKeys {
	cur := k.keys.Load()
	if k.now().Sub(cur.at) >= k.maxAge {
		// Stale: refetch unless a load is already running; on failure the
		// old keys serve until the next attempt.
		_ = k.reload(ctx, cur, false)
		cur = k.keys.Load()
	}
	return cur
}

// lookup returns the key with kid and the loaded set it is in. It wraps
// errUnknownKID, with the cause of a failed refetch joined to it, when
// there is none.
func (k *keyring) lookup(ctx context.Context, kid string) (jwk.Key, *loadedKeys, error) {
	cur := k.current(ctx)
	if key, ok := cur.set.LookupKeyID(kid); ok {
		return key, cur, nil
	}
	// Perhaps the provider rotated its keys: fetch them again, once.
	err := k.reload(ctx, cur, true)
	cur = k.keys.Load()
	if key, ok := cur.set.LookupKeyID(kid); ok {
		return key, cur, nil
	}
	return nil, nil, errors.Join(errUnknownKID, err)
}

// reload loads the keys again unless someone did since seen was read or
// the last attempt was less than minGap ago. wait says whether to wait
// for a load in flight (and then use its result) or give up at once.
func (k *keyring) reload(ctx context.Context, seen *loadedKeys, wait bool) error {
	if wait {
		select {
		case k.busy <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	} else {
		select {
		case k.busy <- struct{}{}:
		default:
			return nil
		}
	}
	defer func() { <-k.busy }()
	if k.keys.Load() != seen {
		return nil // loaded while we waited
	}
	now := k.now()
	k.mu.Lock()
	if now.Sub(k.lastAttempt) < k.minGap {
		k.mu.Unlock()
		return errors.New("JWKS refetch skipped: the last one was less than the refresh interval ago")
	}
	k.lastAttempt = now
	k.mu.Unlock()
	set, err := k.load(ctx)
	if err != nil {
		return fmt.Errorf("refetch JWKS: %w", err)
	}
	k.keys.Store(&loadedKeys{set: set, at: now})
	return nil
}

// loadFile reads a JWKS file.
func loadFile(path string) loadFunc {
	return func(context.Context) (jwk.Set, error) {
		set, err := jwk.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return usable(set)
	}
}

// maxJWKSBytes bounds a fetched JWKS; real ones are a few kilobytes.
const maxJWKSBytes = 1 << 20

// loadURL fetches a JWKS over HTTP. The URL is configuration, never
// personal data, so it may appear in errors.
func loadURL(client *http.Client, url string) loadFunc {
	return func(ctx context.Context) (jwk.Set, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/jwk-set+json, application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		if len(body) > maxJWKSBytes {
			return nil, fmt.Errorf("GET %s: JWKS larger than %d bytes", url, maxJWKSBytes)
		}
		set, err := jwk.Parse(body)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		return usable(set)
	}
}

// minRSABits: shorter RSA keys are breakable and not allowed for
// government use.
const minRSABits = 2048

// usable keeps the public halves of the keys a token may be verified
// with: RSA of at least 2048 bits, EC on P-256, P-384 or P-521, Ed25519;
// with a kid (tokens must name one) and not marked for encryption only. A
// shared secret in a JWKS would let anyone who reads the JWKS sign
// tokens, so oct keys are dropped.
func usable(set jwk.Set) (jwk.Set, error) {
	out := jwk.NewSet()
	for i := range set.Len() {
		k, _ := set.Key(i)
		if k.KeyID() == "" || (k.KeyUsage() != "" && k.KeyUsage() != string(jwk.ForSignature)) {
			continue
		}
		switch k.KeyType() {
		case jwa.RSA, jwa.EC, jwa.OKP:
		default:
			continue
		}
		pub, err := jwk.PublicKeyOf(k)
		if err != nil {
			return nil, err
		}
		if !strongEnough(pub) {
			continue
		}
		if err := out.AddKey(pub); err != nil {
			return nil, err
		}
	}
	if out.Len() == 0 {
		return nil, errors.New("JWKS has no usable signing key (RSA of 2048 bits or more, EC P-256/P-384/P-521 or Ed25519, with a kid)")
	}
	return out, nil
}

func strongEnough(k jwk.Key) bool {
	switch k := k.(type) {
	case jwk.RSAPublicKey:
		var raw rsa.PublicKey
		return k.Raw(&raw) == nil && raw.N.BitLen() >= minRSABits
	case jwk.ECDSAPublicKey:
		switch k.Crv() {
		case jwa.P256, jwa.P384, jwa.P521:
			return true
		}
	case jwk.OKPPublicKey:
		return k.Crv() == jwa.Ed25519
	}
	return false
}

// fits reports whether a token signed with alg may be verified with key:
// the algorithm family matches the key type and curve, and the key's own
// alg, when it names one, is alg. This is what stops HS256-with-the-RSA-
// public-key and none: neither fits any key we keep.
func fits(alg jwa.SignatureAlgorithm, key jwk.Key) bool {
	if ka := key.Algorithm().String(); ka != "" && ka != alg.String() {
		return false
	}
	switch k := key.(type) {
	case jwk.RSAPublicKey:
		switch alg {
		case jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512:
			return true
		}
	case jwk.ECDSAPublicKey:
		switch k.Crv() {
		case jwa.P256:
			return alg == jwa.ES256
		case jwa.P384:
			return alg == jwa.ES384
		case jwa.P521:
			return alg == jwa.ES512
		}
	case jwk.OKPPublicKey:
		return k.Crv() == jwa.Ed25519 && alg == jwa.EdDSA
	}
	return false
}
