package main

import (
	"bufio"
	"fmt"
	"github.com/rootsdev/roots/internal/mountinfo"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// machineID is a short name for this machine in result file names: the
// start of /etc/machine-id, else the host name.
func machineID() string {
	if b, err := os.ReadFile("/etc/machine-id"); err == nil {
		if id := strings.TrimSpace(string(b)); len(id) >= 8 {
			return id[:8]
		}
	}
	h, _ := os.Hostname()
	if h == "" {
		h = "unknown"
	}
	return h
}

// describeMachine says what the figures were measured on.
func describeMachine(work string) []string {
	var lines []string
	lines = append(lines, fmt.Sprintf("CPUs: %d (%s)", runtime.NumCPU(), cpuModel()))
	lines = append(lines, "memory: "+memTotal())
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		lines = append(lines, fmt.Sprintf("kernel: %s %s", unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Release[:])))
	}
	lines = append(lines, "OS: "+osRelease())
	fs, dev := mountOf(work)
	lines = append(lines, fmt.Sprintf("filesystem of the work dir: %s on %s (%s)", fs, dev, work))
	return lines
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func osRelease() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "?"
}

// loadAverage is /proc/loadavg's first three fields: other work on the
// machine shows up in the figures, so the results say how busy it was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// mountOf finds the filesystem type and source of the mount holding dir.
func mountOf(dir string) (fstype, source string) {
	mounts, err := mountinfo.Read()
	if err != nil {
		return "?", "?"
	}
	best := -1
	for _, m := range mounts {
		p := m.Point
		if (dir == p || strings.HasPrefix(dir, strings.TrimSuffix(p, "/")+"/")) && len(p) > best {
			best, fstype, source = len(p), m.FSType, m.Source
		}
	}
	if best < 0 {
		return "?", "?"
	}
	return fstype, source
}
