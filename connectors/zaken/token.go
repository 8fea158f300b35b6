package zaken

import (
	"context"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// tokenReuse is how long one employee's token is sent again before a new
// one is signed: far below Open Zaak's JWT_EXPIRY (an hour by default),
// which refuses tokens whose iat is older, and long enough that a busy
// gateway does not sign one per request.
const tokenReuse = 30 * time.Second

// tokenFor is the employee's current token (see token), signed at most
// every tokenReuse.
func (c *Client) tokenFor(ctx context.Context, u User) (string, error) {
	return c.tokens.Get(ctx, u.ID+"\x00"+u.Representation, func(context.Context) (string, error) { return c.token(u) })
}

// token is a JWT-ZGW token: HS256 with the client's secret, iss and
// client_id the client id, iat now, and the employee as user_id and
// user_representation.
func (c *Client) token(u User) (string, error) {
	tok, err := jwt.NewBuilder().
		Issuer(c.clientID).
		IssuedAt(time.Now()).
		Claim("client_id", c.clientID).
		Claim("user_id", u.ID).
		Claim("user_representation", u.Representation).
		Build()
	if err != nil {
		return "", fmt.Errorf("zaken: build token: %w", err)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256, c.secret))
	if err != nil {
		return "", fmt.Errorf("zaken: sign token: %w", err)
	}
	return string(b), nil
}
