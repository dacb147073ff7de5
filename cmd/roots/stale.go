package main

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/assemble"
)

// A pull builds DEST in a staging directory beside it (see assemble.Stage),
// and holds a flock on that directory while it lives. A pull that was killed
// leaves its staging directory behind, unlocked: the next pull to the same
// DEST removes it.

// holdStage locks the staging directory dir for as long as this process
// lives or until the returned function is called.
func holdStage(dir string) (release func(), err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

// removeStaleStages removes the staging directories of dest that no live pull
// holds.
func removeStaleStages(dest string) {
	parent, base := filepath.Split(dest)
	if len(base) > 200 {
		base = base[:200] // as Stage shortens it
	}
	prefix := "." + base + ".roots-"
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() || !isStageSuffix(rest) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		if release, err := holdStage(dir); err == nil {
			assemble.RemoveAll(dir)
			release()
		}
	}
}

// isStageSuffix reports whether s is a staging directory's random suffix (six
// hex digits) or the name of a tree that overlay --force moved aside.
func isStageSuffix(s string) bool {
	if strings.HasPrefix(s, "old-") {
		return true
	}
	if len(s) != 6 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
