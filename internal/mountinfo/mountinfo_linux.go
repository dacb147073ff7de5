// Package mountinfo reads this process's mount table (/proc/self/mountinfo): roots must know
// which overlays it mounted, and must never remove or replace anything below a mount point.
package mountinfo

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Mount is one line of the mount table.
type Mount struct {
	Point  string // where it is mounted, octal escapes undone
	FSType string // "overlay", "tmpfs", "ext4", ...
	Source string // "/dev/sda1", "tmpfs", "overlay", ...
}

// Read returns this mount namespace's mounts, in the kernel's order.
func Read() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	defer f.Close()
	var mounts []Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		m := Mount{Point: Unescape(fields[4]), FSType: fields[sep+1]}
		if sep+2 < len(fields) {
			m.Source = Unescape(fields[sep+2])
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	return mounts, nil
}

// Below returns the mount points at dir or below it (dir absolute and clean, its symlinks
// resolved, as the mount table names it), sorted, each once.
func Below(dir string) ([]string, error) {
	mounts, err := Read()
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	seen := map[string]bool{}
	var out []string
	for _, m := range mounts {
		if (m.Point == dir || strings.HasPrefix(m.Point, dir+"/") || dir == "/") && !seen[m.Point] {
			seen[m.Point] = true
			out = append(out, m.Point)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
