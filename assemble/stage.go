package assemble

import (
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootsdev/roots/internal/mountinfo"
)

// Staging is a destination being built beside its final path, so that the final path only ever
// holds a complete tree: the old one or the new one.
type Staging struct {
	Dir string // where to build: a hidden directory beside the destination

	dest  string
	force bool
	done  bool   // committed or aborted
	held  func() // releases the flock that marks Dir as in use (see RemoveStale)
}

// maxStageBase bounds the destination's name inside the staging name, so that the staging name
// fits NAME_MAX (255) whatever the destination is called.
const maxStageBase = 200

// Stage creates an empty directory beside dest (same parent, named ".DEST.roots-XXXXXX") to
// build the destination in. If dest exists and force is false, Stage creates nothing and returns
// an error wrapping ErrExists. The parent of dest must exist.
func Stage(dest string, force bool) (*Staging, error) {
	dest = filepath.Clean(dest)
	parent, base := filepath.Dir(dest), filepath.Base(dest)
	if base == "/" || base == "." || base == ".." {
		return nil, fmt.Errorf("stage %s: not a name a directory can be created at", dest)
	}
	fi, err := os.Stat(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("stage %s: parent directory %s does not exist", dest, parent)
	}
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", dest, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("stage %s: parent %s is not a directory", dest, parent)
	}
	if _, err := os.Lstat(dest); err == nil {
		if !force {
			return nil, existsError(dest)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("stage %s: %w", dest, err)
	}
	for {
		dir := StagePath(dest, fmt.Sprintf("%06x", rand.Uint32()&0xffffff))
		err := os.Mkdir(dir, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", dest, err)
		}
		held, err := hold(dir)
		if err != nil {
			os.Remove(dir)
			return nil, fmt.Errorf("stage %s: %w", dest, err)
		}
		return &Staging{Dir: dir, dest: dest, force: force, held: held}, nil
	}
}

// StagePath is the hidden name beside dest, ".DEST.roots-SUFFIX", that Stage builds in and that
// callers use for a tree they move aside; RemoveStale finds both.
func StagePath(dest, suffix string) string {
	dest = filepath.Clean(dest)
	base := filepath.Base(dest)
	if len(base) > maxStageBase {
		base = base[:maxStageBase]
	}
	return filepath.Join(filepath.Dir(dest), "."+base+".roots-"+suffix)
}

// RemoveStale removes the staging directories of dest, and trees moved aside with a StagePath
// suffix starting "old-", that no live process holds: what a killed pull left behind. A live
// Staging holds a flock on its directory until Commit or Abort.
func RemoveStale(dest string) {
	prefix := filepath.Base(StagePath(dest, ""))
	parent := filepath.Dir(filepath.Clean(dest))
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
		if release, err := hold(dir); err == nil {
			disk.RemoveAll(dir)
			release()
		}
	}
}

// isStageSuffix reports whether s is a staging directory's random suffix (six hex digits) or
// names a tree moved aside ("old-...").
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

// release gives up the staging directory's flock, once.
func (s *Staging) release() {
	if s.held != nil {
		s.held()
		s.held = nil
	}
}

// Commit moves the staging directory into place. When the destination does not exist it is
// renamed there. When it does, it is swapped in atomically if Stage was asked to force (the old
// tree, left at the staging name, is then removed); otherwise Commit fails with ErrExists and
// removes the staging directory.
func (s *Staging) Commit() error {
	if s.done {
		return fmt.Errorf("commit %s: staging directory already committed or aborted", s.dest)
	}
	err := renameNoReplace(s.Dir, s.dest)
	if err == nil {
		s.done = true
		s.release()
		return disk.SyncDir(filepath.Dir(s.dest))
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("commit %s: %w", s.dest, err)
	}
	if !s.force {
		if err := s.Abort(); err != nil {
			return fmt.Errorf("%w (and removing the staging directory: %v)", existsError(s.dest), err)
		}
		return existsError(s.dest)
	}
	// A mount that appeared below the destination since the caller looked would lose what it
	// holds once the old tree is removed: leave everything as it is.
	if mounts, err := mountinfo.Below(canonicalParent(s.dest)); err != nil || len(mounts) > 0 {
		if err == nil {
			err = fmt.Errorf("%s is mounted below it: %w", Quote(mounts[0]), ErrMountPoint)
		}
		s.Abort()
		return fmt.Errorf("commit %s: %w", Quote(s.dest), err)
	}
	if err := exchange(s.Dir, s.dest); err != nil {
		return fmt.Errorf("commit %s: replace: %w", s.dest, err)
	}
	s.done = true
	serr := disk.SyncDir(filepath.Dir(s.dest))
	err = disk.RemoveAll(s.Dir)
	s.release()
	if err != nil {
		return fmt.Errorf("commit %s: the new tree is in place, but the replaced one could not be removed and is left at %s: %w", Quote(s.dest), Quote(s.Dir), err)
	}
	return serr
}

// canonicalParent is p with its parent's symlinks resolved, as the mount table names it.
func canonicalParent(p string) string {
	if c, err := Canonical(p); err == nil {
		return c
	}
	return p
}

// Canonical makes dest absolute with its parent's symlinks resolved, as the kernel's mount
// table names it; dest itself may not exist yet.
func Canonical(dest string) (string, error) {
	abs, err := filepath.Abs(dest)
	if err != nil {
		return "", err
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", fmt.Errorf("%s: parent directory: %w", dest, err)
	}
	return filepath.Join(parent, filepath.Base(abs)), nil
}

// Quote is a path as a message shows it: as it is, or Go-quoted when it holds control
// characters or bytes that are not UTF-8, so that a message stays one readable line.
func Quote(p string) string {
	q := fmt.Sprintf("%q", p)
	if q[1:len(q)-1] == p {
		return p
	}
	return q
}

// Abort removes the staging directory and everything in it (see RemoveAll). After Commit, or a
// second time, it does nothing.
func (s *Staging) Abort() error {
	if s.done {
		return nil
	}
	err := disk.RemoveAll(s.Dir)
	s.release()
	if err != nil {
		return fmt.Errorf("abort %s: %w", s.dest, err)
	}
	s.done = true
	return nil
}

// existsError is the error for an existing destination that may not be replaced.
func existsError(dest string) error {
	return fmt.Errorf("%s %w", Quote(dest), ErrExists)
}
