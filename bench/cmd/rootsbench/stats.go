//go:build linux

package main

import (
	"fmt"
	"runtime"
	"slices"
	"time"
)

// stats sums up a row's timed runs.
type stats struct {
	n        int
	median   time.Duration // wall
	min, max time.Duration // wall
	cpu      time.Duration // median user+sys
	rss      int64         // largest peak RSS of any run
	others   float64       // median share of the machine's CPU that other processes took during a run
}

func summarize(samples []sample) stats {
	if len(samples) == 0 {
		return stats{}
	}
	walls := make([]time.Duration, len(samples))
	cpus := make([]time.Duration, len(samples))
	others := make([]float64, len(samples))
	var rss int64
	for i, s := range samples {
		walls[i], cpus[i] = s.wall, s.cpu
		rss = max(rss, s.maxRSS)
		if s.wall > 0 {
			others[i] = float64(s.others) / (float64(s.wall) * float64(runtime.NumCPU()))
		}
	}
	slices.Sort(walls)
	slices.Sort(others)
	return stats{n: len(samples), median: median(walls), min: walls[0], max: walls[len(walls)-1], cpu: median(cpus), rss: rss,
		others: others[len(others)/2]}
}

// median of durations; the mean of the middle two for an even count.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// seconds formats a duration for the table: milliseconds under a second.
func seconds(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func mib(n int64) string {
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}
