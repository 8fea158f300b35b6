package zaken

import (
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// token is a JWT-ZGW token for one request: HS256 with the client's secret,
// iss and client_id the client id, iat now, and the employee as user_id and
// user_representation. Open Zaak refuses tokens older than its JWT_EXPIRY,
// so each request gets a fresh one.
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
