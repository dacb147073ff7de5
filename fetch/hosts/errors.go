package hosts

import "errors"

// ErrBlocked: registries.conf blocks pulls from the repository.
var ErrBlocked = errors.New("blocked by registries.conf")

// ErrConfig: a configuration file does not parse or has a key or value
// roots does not know.
var ErrConfig = errors.New("invalid host configuration")
