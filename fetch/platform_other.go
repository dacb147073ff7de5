//go:build !linux

package fetch

// cpuVariant is only known on Linux.
func cpuVariant() string { return "" }
