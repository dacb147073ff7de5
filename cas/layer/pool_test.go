package layer

import (
	"fmt"
	"os"
	"slices"
	"testing"
)

// poolCases are orders of entries where the pool (pool_linux.go) must keep the stream's order:
// a path handed to the pool and then written, replaced or walked through by a later entry, in
// the same layer and over a lower one, and layers of more files than a batch and than the pool
// takes before it is drained.
func poolCases() []layerCase {
	many, manyWant := poolManyFiles()
	return []layerCase{
		{
			name:   "PoolSameFileTwice",
			layers: [][]ent{{reg("f", "one"), reg("g", "g"), reg("f", "two")}},
			want:   []string{`f file 0644 0:0 "two"`, `g file 0644 0:0 "g"`},
		},
		{
			name:   "PoolFileThenDirSameName",
			layers: [][]ent{{reg("d/x", "x"), dir("d/x").M(0o700), reg("d/x/y", "y")}},
			want:   []string{"d dir 0755 0:0 t=now", "d/x dir 0700 0:0", `d/x/y file 0644 0:0 "y"`},
		},
		{
			name:   "PoolFileThenFileBelowIt",
			layers: [][]ent{{reg("d", "file"), reg("d/x", "x")}},
			want:   []string{"d dir 0755 0:0 t=now", `d/x file 0644 0:0 "x"`},
		},
		{
			name:   "PoolFileThenSymlinkSameName",
			layers: [][]ent{{reg("a/f", "f"), sym("a/f", "../t")}},
			want:   []string{"a dir 0755 0:0 t=now", `a/f symlink 0:0 -> "../t"`},
		},
		{
			name:   "PoolFileThenHardlinkToIt",
			layers: [][]ent{{reg("a/f", "f"), hard("b/h", "a/f")}},
			want:   []string{"a dir 0755 0:0 t=now", `a/f file 0644 0:0 "f"`, "b dir 0755 0:0 t=now", "b/h file 0644 0:0 =a/f"},
		},
		{
			name:   "PoolLowerDirReplacedByFileThenWalkedThroughSymlink",
			layers: [][]ent{{dir("d"), reg("d/a", "a")}, {reg("d", "file"), sym("s", "d"), reg("s/b", "b")}},
			want:   []string{"d dir 0755 0:0 t=now", `d/b file 0644 0:0 "b"`, `s symlink 0:0 -> "d"`},
		},
		{
			name:   "PoolLowerFilesReplaced",
			layers: [][]ent{{reg("a/1", "old"), reg("a/2", "old"), reg("b/3", "old")}, {reg("a/2", "new"), reg("b/3", "new"), reg("b/4", "new")}},
			want: []string{"a dir 0755 0:0 t=now", `a/1 file 0644 0:0 "old"`, `a/2 file 0644 0:0 "new"`,
				"b dir 0755 0:0 t=now", `b/3 file 0644 0:0 "new"`, `b/4 file 0644 0:0 "new"`},
		},
		{
			name:   "PoolFileThenWhiteoutOfIt",
			layers: [][]ent{{reg("a/f", "f"), reg("a/g", "g")}, {reg("a/n", "n"), reg("a/.wh.f", ""), reg("a/n", "n2")}},
			want:   []string{"a dir 0755 0:0 t=now", `a/g file 0644 0:0 "g"`, `a/n file 0644 0:0 "n2"`},
		},
		{
			name:   "PoolManyFiles",
			layers: many,
			want:   manyWant,
		},
	}
}

// poolManyFiles is two layers of more files than the pool takes before it is drained, in
// directories of more files than a batch, where the upper layer replaces some of the lower's
// files, writes one of its own twice and turns one of its own files into a directory.
func poolManyFiles() ([][]ent, []string) {
	const dirs, per = 40, 250 // 10,000 files
	var lower, upper []ent
	want := map[string]string{}
	for d := range dirs {
		want[fmt.Sprintf("d%02d", d)] = "dir 0755 0:0 t=now"
		for f := range per {
			p := fmt.Sprintf("d%02d/f%03d", d, f)
			lower = append(lower, reg(p, p))
			want[p] = fmt.Sprintf("file 0644 0:0 %q", p)
		}
	}
	for d := 0; d < dirs; d += 7 {
		p := fmt.Sprintf("d%02d/f%03d", d, d)
		upper = append(upper, reg(p, "upper "+p))
		want[p] = fmt.Sprintf("file 0644 0:0 %q", "upper "+p)
	}
	for f := range 9000 {
		p := fmt.Sprintf("new/n%04d", f)
		upper = append(upper, reg(p, p))
		want[p] = fmt.Sprintf("file 0644 0:0 %q", p)
	}
	want["new"] = "dir 0755 0:0 t=now"
	upper = append(upper, reg("new/n0001", "again"), reg("new/n0002/x", "x"))
	want["new/n0001"] = `file 0644 0:0 "again"`
	want["new/n0002"] = "dir 0755 0:0 t=now"
	want["new/n0002/x"] = `file 0644 0:0 "x"`
	var lines []string
	for p, l := range want {
		lines = append(lines, p+" "+l)
	}
	slices.Sort(lines)
	return [][]ent{lower, upper}, lines
}

func TestPool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestPool checks owners as TestLayers does: run it as root (CI does)")
	}
	for _, tc := range poolCases() {
		t.Run(tc.name, func(t *testing.T) { runLayerCase(t, tc, true) })
	}
}
