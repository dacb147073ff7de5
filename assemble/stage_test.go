package assemble

import (
	"errors"
	"github.com/rootsdev/roots/internal/testtree"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestStage(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dest string) // before Stage
		dest    func(parent string) string
		force   bool
		wantErr error
		wantMsg string // part of the error message
		check   func(t *testing.T, parent string, s *Staging)
	}{
		{
			name: "StageHiddenBesideDest",
			check: func(t *testing.T, parent string, s *Staging) {
				if filepath.Dir(s.Dir) != parent || !strings.HasPrefix(filepath.Base(s.Dir), ".dest.roots-") {
					t.Errorf("staging dir %s, want %s/.dest.roots-XXXXXX", s.Dir, parent)
				}
				if fi, err := os.Stat(s.Dir); err != nil || !fi.IsDir() || len(entries(t, s.Dir)) != 0 {
					t.Errorf("staging dir is not an empty directory: %v", err)
				}
			},
		},
		{
			name:    "StageRefusesExisting",
			setup:   func(t *testing.T, dest string) { must(t, os.Mkdir(dest, 0o755)) },
			wantErr: ErrExists,
			wantMsg: "exists",
		},
		{
			name:    "StageRefusesExistingSymlink",
			setup:   func(t *testing.T, dest string) { must(t, os.Symlink("/nonexistent", dest)) },
			wantErr: ErrExists,
		},
		{
			name:  "StageForceAcceptsExisting",
			setup: func(t *testing.T, dest string) { must(t, os.Mkdir(dest, 0o755)) },
			force: true,
		},
		{
			name:    "StageMissingParent",
			dest:    func(parent string) string { return filepath.Join(parent, "no", "such", "dest") },
			wantMsg: "parent directory " + "PARENT/no/such does not exist",
		},
		{
			name:    "StageParentIsFile",
			setup:   func(t *testing.T, dest string) { must(t, os.WriteFile(filepath.Dir(dest), nil, 0o644)) },
			dest:    func(parent string) string { return filepath.Join(parent, "f", "dest") },
			wantMsg: "is not a directory",
		},
		{
			name: "StageLongName",
			dest: func(parent string) string { return filepath.Join(parent, strings.Repeat("n", 255)) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "dest")
			if tc.dest != nil {
				dest = tc.dest(parent)
			}
			if tc.setup != nil {
				tc.setup(t, dest)
			}
			before := entries(t, parent)
			s, err := Stage(dest, tc.force)
			if tc.wantErr != nil || tc.wantMsg != "" {
				if err == nil {
					t.Fatalf("Stage succeeded, want an error")
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v, want %v", err, tc.wantErr)
				}
				if msg := strings.ReplaceAll(tc.wantMsg, "PARENT", parent); !strings.Contains(err.Error(), msg) {
					t.Errorf("error %q does not say %q", err, msg)
				}
				if after := entries(t, parent); len(after) != len(before) {
					t.Errorf("Stage created something: %v", after)
				}
				return
			}
			must(t, err)
			t.Cleanup(func() { s.Abort() })
			if tc.check != nil {
				tc.check(t, parent, s)
			}
		})
	}
}

func TestCommit(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name     string
		before   func(t *testing.T, dest, out string) // before Stage
		meantime func(t *testing.T, dest string)      // between Stage and Commit
		force    bool
		wantErr  error
		wantDest string // content of dest/marker after Commit
	}{
		{name: "CommitRenames", wantDest: "new"},
		{
			name: "CommitForceSwaps",
			before: func(t *testing.T, dest, out string) {
				must(t, os.Mkdir(dest, 0o755))
				must(t, os.WriteFile(filepath.Join(dest, "marker"), []byte("old"), 0o644))
				testtree.Hostile(t, filepath.Join(dest, "hostile"), out, 0)
			},
			force:    true,
			wantDest: "new",
		},
		{
			name:     "CommitForceReplacesSymlink",
			before:   func(t *testing.T, dest, out string) { must(t, os.Symlink(out, dest)) },
			force:    true,
			wantDest: "new",
		},
		{
			name:     "CommitForceWhenDestVanished",
			before:   func(t *testing.T, dest, out string) { must(t, os.Mkdir(dest, 0o755)) },
			meantime: func(t *testing.T, dest string) { must(t, os.Remove(dest)) },
			force:    true,
			wantDest: "new",
		},
		{
			name: "CommitRaceWithoutForce",
			meantime: func(t *testing.T, dest string) {
				must(t, os.Mkdir(dest, 0o755))
				must(t, os.WriteFile(filepath.Join(dest, "marker"), []byte("theirs"), 0o644))
			},
			wantErr:  ErrExists,
			wantDest: "theirs",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			out := testtree.Outside(t, filepath.Join(base, "outside"))
			parent := filepath.Join(base, "parent")
			must(t, os.Mkdir(parent, 0o755))
			dest := filepath.Join(parent, "dest")
			if tc.before != nil {
				tc.before(t, dest, out)
			}
			s, err := Stage(dest, tc.force)
			must(t, err)
			must(t, os.WriteFile(filepath.Join(s.Dir, "marker"), []byte("new"), 0o644))
			if tc.meantime != nil {
				tc.meantime(t, dest)
			}
			err = s.Commit()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Commit: %v, want %v", err, tc.wantErr)
			}
			b, err := os.ReadFile(filepath.Join(dest, "marker"))
			must(t, err)
			if string(b) != tc.wantDest {
				t.Errorf("dest/marker = %q, want %q", b, tc.wantDest)
			}
			if names := entries(t, parent); len(names) != 1 || names[0] != "dest" {
				t.Errorf("parent holds %v, want only dest (staging or old tree left behind)", names)
			}
			testtree.OutsideIntact(t, out)
			must(t, s.Abort()) // after Commit (or its failure): nothing left to do
			if err := s.Commit(); err == nil {
				t.Errorf("second Commit succeeded")
			}
		})
	}
}

func TestAbortRemovesHostile(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	out := testtree.Outside(t, filepath.Join(base, "outside"))
	dest := filepath.Join(base, "dest")
	s, err := Stage(dest, false)
	must(t, err)
	testtree.Hostile(t, filepath.Join(s.Dir, "rootfs"), out, 0)
	must(t, s.Abort())
	if _, err := os.Lstat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging dir still there: %v", err)
	}
	if names := entries(t, base); len(names) != 1 || names[0] != "outside" {
		t.Errorf("left behind: %v", names)
	}
	testtree.OutsideIntact(t, out)
	must(t, s.Abort()) // twice: no-op
}
