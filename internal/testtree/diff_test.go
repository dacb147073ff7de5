package testtree

import (
	"reflect"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	since := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	late, later := since.UnixNano(), since.Add(time.Hour).UnixNano()
	f := File(0o644, "x")
	tests := []struct {
		name      string
		want, got map[string]Entry
		opts      []DiffOption
		diffs     []string
	}{
		{"Equal", map[string]Entry{"f": f}, map[string]Entry{"f": f}, nil, nil},
		{"MissingAndUnexpected", map[string]Entry{"a": f}, map[string]Entry{"b": f}, nil, []string{
			`"a": missing (want f -rw-r--r-- 0:0 size=1 hash=2d711642b726b0440162)`,
			`"b": unexpected (f -rw-r--r-- 0:0 size=1 hash=2d711642b726b0440162)`,
		}},
		{"OneLineAnAspect", map[string]Entry{"f": f}, map[string]Entry{"f": {Type: "f", Mode: 0o600, UID: 1, Size: 1, Hash: f.Hash}}, nil, []string{
			`"f": mode -rw-------, want -rw-r--r--`, `"f": owner 1:0, want 0:0`,
		}},
		{"OnlyBasicIgnoresMtime", map[string]Entry{"f": f}, map[string]Entry{"f": {Type: "f", Mode: 0o644, Size: 1, Hash: f.Hash, Mtime: 5}}, []DiffOption{Only(Basic...)}, nil},
		{"ImageSeesMtime", map[string]Entry{"f": f}, map[string]Entry{"f": {Type: "f", Mode: 0o644, Size: 1, Hash: f.Hash, Mtime: 0}}, nil, nil},
		{"Excused", map[string]Entry{"f": f, "gone": f}, map[string]Entry{"f": {Type: "f", Mode: 0o600, Size: 1, Hash: f.Hash}},
			[]DiffOption{Excuse("f", Mode), Excuse("gone", Exists)}, nil},
		{"DirMtimesFromBothLate", map[string]Entry{"d": {Type: "d", Mtime: late}}, map[string]Entry{"d": {Type: "d", Mtime: later}},
			[]DiffOption{DirMtimesFrom(since)}, nil},
		{"DirMtimesFromOneFromImage", map[string]Entry{"d": {Type: "d", Mtime: 1}}, map[string]Entry{"d": {Type: "d", Mtime: later}},
			[]DiffOption{DirMtimesFrom(since)}, []string{`"d": mtime 2030-01-01T01:00:00Z, want 1970-01-01T00:00:00.000000001Z`}},
		{"Hardlinks", map[string]Entry{"a": {Type: "f", Hardlinks: "a|b"}}, map[string]Entry{"a": {Type: "f"}}, nil, []string{`"a": hardlinks "", want "a|b"`}},
		{"IdentityOnlyWhenAsked", map[string]Entry{"a": {Type: "f", Ino: 1}}, map[string]Entry{"a": {Type: "f", Ino: 2}}, nil, nil},
		{"IdentityAll", map[string]Entry{"a": {Type: "f", Ino: 1}}, map[string]Entry{"a": {Type: "f", Ino: 2}}, []DiffOption{Only(All...)},
			[]string{`"a": identity ctime=1970-01-01T00:00:00Z dev=0 ino=2 nlink=0 blocks=0, want ctime=1970-01-01T00:00:00Z dev=0 ino=1 nlink=0 blocks=0`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(tc.want, tc.got, tc.opts...)
			if (len(got) != 0 || len(tc.diffs) != 0) && !reflect.DeepEqual(got, tc.diffs) {
				t.Errorf("Diff =\n%q\nwant\n%q", got, tc.diffs)
			}
		})
	}
}
