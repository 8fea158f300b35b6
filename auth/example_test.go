package auth_test

import (
	"errors"
	"fmt"

	"github.com/klantbeeld/klantbeeld/auth"
)

// A refusal says why in a phrase fit for the caller, and matches
// ErrInvalidToken; the cause is kept apart, for the log.
func ExampleTokenError() {
	var err error = &auth.TokenError{Reason: auth.ReasonClaim, Field: "roles", Err: errors.New("not an array")}
	fmt.Println(err)
	fmt.Println(errors.Is(err, auth.ErrInvalidToken))
	if te, ok := errors.AsType[*auth.TokenError](err); ok {
		fmt.Println(te.Reason == auth.ReasonClaim, te.Err)
	}
	// Output:
	// invalid token: token claim not valid (roles)
	// true
	// true not an array
}
