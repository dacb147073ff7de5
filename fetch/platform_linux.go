package fetch

import (
	"bufio"
	"os"
	"strings"
)

// cpuVariant reads the ARM architecture version from /proc/cpuinfo ("CPU
// architecture: 7") as containerd does, or "" when it cannot tell.
func cpuVariant() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		key, value, ok := strings.Cut(s.Text(), ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(key), "CPU architecture") {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "8", "aarch64":
			return "v8"
		case "7", "7m", "?(12)", "?(13)", "?(14)", "?(15)", "?(16)", "?(17)":
			return "v7"
		case "6", "6tej":
			return "v6"
		case "5", "5t", "5te", "5tej":
			return "v5"
		}
		return ""
	}
	return ""
}
