package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// On a shared machine other work lands in the middle of a timed run. The
// benchmark cannot stop it, but it can wait for a quiet moment before a run
// (within a budget) and say afterwards how much CPU others took during each
// run, from /proc/stat.

// userHz is the unit of /proc/stat (USER_HZ, 100 on every Linux port that
// matters).
const userHz = 100

// cpuTimes are the system-wide CPU counters of /proc/stat, in jiffies.
type cpuTimes struct{ busy, total uint64 }

func readCPU() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var t cpuTimes
	for i, s := range f[1:] {
		if i >= 8 { // guest time is already in user
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %w", err)
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t, nil
}

// busyCPU is the CPU time all processes used between a and b.
func busyCPU(a, b cpuTimes) time.Duration {
	return time.Duration(b.busy-a.busy) * time.Second / userHz
}

// waitQuiet waits until the CPUs were at least 90% idle over a 300 ms
// window, for at most limit, and returns how long it waited.
func waitQuiet(ctx context.Context, limit time.Duration) time.Duration {
	const window = 300 * time.Millisecond
	start := time.Now()
	for time.Since(start) < limit {
		a, err := readCPU()
		if err != nil {
			return 0
		}
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-time.After(window):
		}
		b, err := readCPU()
		if err != nil {
			return 0
		}
		capacity := float64(window) * float64(runtime.NumCPU())
		if float64(busyCPU(a, b)) < 0.1*capacity {
			break
		}
	}
	return time.Since(start)
}
