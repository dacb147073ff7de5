package fetch

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Platform is an OS, an architecture and an optional CPU variant, as in an
// image config or an index entry.
type Platform struct{ OS, Architecture, Variant string }

var platformPart = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// ParsePlatform parses "os/arch[/variant]" ("linux/arm64", "linux/arm/v7",
// "linux/arm64/v8") and normalises it like containerd does: x86_64 is
// amd64, aarch64 is arm64, "linux/arm" is arm/v7. A lone architecture
// ("arm64") means Linux. Errors wrap ErrInvalidPlatform.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if s == "" || len(parts) > 3 {
		return Platform{}, errorf(ErrInvalidPlatform, "invalid platform %q: want os/arch[/variant], e.g. linux/arm64", s)
	}
	for _, p := range parts {
		if !platformPart.MatchString(p) {
			return Platform{}, errorf(ErrInvalidPlatform, "invalid platform %q: want os/arch[/variant], e.g. linux/arm64", s)
		}
	}
	if len(parts) == 1 {
		parts = []string{"linux", parts[0]}
	}
	p := Platform{OS: normalizeOS(parts[0])}
	variant := ""
	if len(parts) == 3 {
		variant = parts[2]
	}
	p.Architecture, p.Variant = normalizeArch(parts[1], variant)
	if len(parts) == 3 && p.Architecture == "arm64" && p.Variant == "" {
		p.Variant = "v8" // containerd keeps an explicit arm64 variant
	}
	return p, nil
}

// HostPlatform is the platform this program runs on: runtime.GOOS and
// runtime.GOARCH, with the CPU variant on ARM.
func HostPlatform() Platform {
	p := Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	switch p.Architecture {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = cpuVariant()
		if p.Variant == "" {
			p.Variant = goarmVariant()
		}
	}
	return p
}

// goarmVariant reads GOARM from the build settings ("7", "6,softfloat").
func goarmVariant() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				v, _, _ := strings.Cut(s.Value, ",")
				return "v" + v
			}
		}
	}
	return "v7"
}

// String is "os/arch" or "os/arch/variant".
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Normalize returns p in containerd's canonical form, in which equal
// platforms compare equal: arm64/v8 is arm64, arm is arm/v7, x86_64 is amd64.
func (p Platform) Normalize() Platform {
	p.OS = normalizeOS(p.OS)
	p.Architecture, p.Variant = normalizeArch(p.Architecture, p.Variant)
	return p
}

// Match reports whether an image built for have runs on p: same OS and
// architecture, and the same variant or, for arm and amd64, a lower one.
func (p Platform) Match(have Platform) bool { return p.rank(have) >= 0 }

// rank is -1 when have does not run on p, else how far have is from p: 0
// for the same variant, 1 for the next lower one and so on (containerd's
// platforms.Only order, without crossing architectures).
func (p Platform) rank(have Platform) int {
	want, have := p.Normalize(), have.Normalize()
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return -1
	}
	for i, v := range compatibleVariants(want) {
		if v == have.Variant {
			return i
		}
	}
	return -1
}

// compatibleVariants lists the variants that run on a normalised platform,
// best first.
func compatibleVariants(p Platform) []string {
	vs := []string{p.Variant}
	n, err := strconv.Atoi(strings.TrimPrefix(p.Variant, "v"))
	if err != nil || !strings.HasPrefix(p.Variant, "v") {
		return vs
	}
	switch p.Architecture {
	case "arm":
		for n--; n >= 5; n-- {
			vs = append(vs, "v"+strconv.Itoa(n))
		}
	case "amd64":
		for n--; n >= 2; n-- {
			vs = append(vs, "v"+strconv.Itoa(n))
		}
		vs = append(vs, "") // v1
	case "arm64":
		if n > 8 {
			vs = append(vs, "") // v8
		}
	}
	return vs
}

func normalizeOS(os string) string {
	os = strings.ToLower(os)
	if os == "macos" {
		return "darwin"
	}
	return os
}

// normalizeArch follows containerd's platforms.Normalize.
func normalizeArch(arch, variant string) (string, string) {
	arch, variant = strings.ToLower(arch), strings.ToLower(variant)
	switch arch {
	case "i386":
		arch, variant = "386", ""
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "aarch64", "arm64":
		arch = "arm64"
		switch variant {
		case "8", "v8", "v8.0":
			variant = ""
		case "9", "9.0", "v9.0":
			variant = "v9"
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
	}
	return arch, variant
}
