package auth

import "errors"

var (
	// ErrUnauthorized means the registry or its token server refused the request
	// even with the best credential we had (or without one, when there was none).
	ErrUnauthorized = errors.New("unauthorized")

	// ErrMalformedChallenge means a WWW-Authenticate header does not parse.
	ErrMalformedChallenge = errors.New("malformed WWW-Authenticate challenge")

	// ErrMalformedCredentials means a credential source is unusable: a --user value
	// without a colon, or an auth file that is not valid JSON or holds a bad entry.
	ErrMalformedCredentials = errors.New("malformed credentials")

	// ErrPlainRealm means a token realm on another host than loopback asks for
	// credentials over plain HTTP, where anyone on the path could read them.
	ErrPlainRealm = errors.New("token realm is plain HTTP")

	// ErrCredentialHelper means a docker-credential-* helper could not be run or
	// failed for a reason other than "credentials not found".
	ErrCredentialHelper = errors.New("credential helper failed")
)
