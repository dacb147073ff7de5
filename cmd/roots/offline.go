package main

import (
	"fmt"
	"time"
)

// recordNote is the line an offline command prints on a terminal when a tag resolved
// through the cache's record of it: how old that record is, since the tag may have moved.
func recordNote(image string, at time.Time) string {
	return fmt.Sprintf("using the cache's record of %s, made %s (offline)", image, ago(time.Now(), at))
}
