package fetch

import (
	"errors"
	"runtime"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in   string
		want Platform
	}{
		{"linux/amd64", Platform{"linux", "amd64", ""}},
		{"linux/x86_64", Platform{"linux", "amd64", ""}},
		{"linux/amd64/v3", Platform{"linux", "amd64", "v3"}},
		{"linux/arm64", Platform{"linux", "arm64", ""}},
		{"linux/aarch64", Platform{"linux", "arm64", ""}},
		{"linux/arm64/v8", Platform{"linux", "arm64", "v8"}},
		{"linux/arm64/8", Platform{"linux", "arm64", "v8"}},
		{"linux/arm", Platform{"linux", "arm", "v7"}},
		{"linux/arm/v7", Platform{"linux", "arm", "v7"}},
		{"linux/arm/6", Platform{"linux", "arm", "v6"}},
		{"linux/armhf", Platform{"linux", "arm", "v7"}},
		{"linux/i386", Platform{"linux", "386", ""}},
		{"Linux/S390X", Platform{"linux", "s390x", ""}},
		{"arm64", Platform{"linux", "arm64", ""}},
		{"linux/riscv64", Platform{"linux", "riscv64", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePlatform(tt.in)
			if err != nil {
				t.Fatalf("ParsePlatform(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParsePlatformErrors(t *testing.T) {
	for _, in := range []string{"", "/", "linux/", "/amd64", "linux/arm/v7/x", "linux amd64", "linux/amd64/"} {
		t.Run(in, func(t *testing.T) {
			if p, err := ParsePlatform(in); !errors.Is(err, ErrInvalidPlatform) {
				t.Errorf("ParsePlatform(%q) = %#v, %v; want ErrInvalidPlatform", in, p, err)
			}
		})
	}
}

func TestPlatformString(t *testing.T) {
	tests := []struct {
		p    Platform
		want string
	}{
		{Platform{"linux", "amd64", ""}, "linux/amd64"},
		{Platform{"linux", "arm64", "v8"}, "linux/arm64/v8"},
		{Platform{"linux", "arm", "v7"}, "linux/arm/v7"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestHostPlatform(t *testing.T) {
	p := HostPlatform()
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		t.Errorf("HostPlatform() = %v, want %s/%s", p, runtime.GOOS, runtime.GOARCH)
	}
	if runtime.GOARCH == "arm" && p.Variant == "" {
		t.Error("HostPlatform() on arm has no variant")
	}
	if !p.Match(p) {
		t.Errorf("%v does not match itself", p)
	}
}

func TestPlatformMatch(t *testing.T) {
	tests := []struct {
		name       string
		want, have Platform
		match      bool
	}{
		{"Same", Platform{"linux", "amd64", ""}, Platform{"linux", "amd64", ""}, true},
		{"Arm64V8MatchesEmpty", Platform{"linux", "arm64", "v8"}, Platform{"linux", "arm64", ""}, true},
		{"Arm64EmptyMatchesV8", Platform{"linux", "arm64", ""}, Platform{"linux", "arm64", "v8"}, true},
		{"ArmDefaultIsV7", Platform{"linux", "arm", ""}, Platform{"linux", "arm", "v7"}, true},
		{"ArmV7RunsV6", Platform{"linux", "arm", "v7"}, Platform{"linux", "arm", "v6"}, true},
		{"ArmV7RunsV5", Platform{"linux", "arm", "v7"}, Platform{"linux", "arm", "v5"}, true},
		{"ArmV6DoesNotRunV7", Platform{"linux", "arm", "v6"}, Platform{"linux", "arm", "v7"}, false},
		{"ArmV6DoesNotRunDefault", Platform{"linux", "arm", "v6"}, Platform{"linux", "arm", ""}, false},
		{"Amd64V3RunsV2", Platform{"linux", "amd64", "v3"}, Platform{"linux", "amd64", "v2"}, true},
		{"Amd64V3RunsV1", Platform{"linux", "amd64", "v3"}, Platform{"linux", "amd64", ""}, true},
		{"Amd64DoesNotRunV3", Platform{"linux", "amd64", ""}, Platform{"linux", "amd64", "v3"}, false},
		{"Arm64V9RunsV8", Platform{"linux", "arm64", "v9"}, Platform{"linux", "arm64", "v8"}, true},
		{"Arm64DoesNotRunArm", Platform{"linux", "arm64", ""}, Platform{"linux", "arm", "v7"}, false},
		{"Amd64DoesNotRun386", Platform{"linux", "amd64", ""}, Platform{"linux", "386", ""}, false},
		{"OtherOS", Platform{"linux", "amd64", ""}, Platform{"windows", "amd64", ""}, false},
		{"CaseInsensitive", Platform{"linux", "amd64", ""}, Platform{"Linux", "x86_64", ""}, true},
		{"Unknown", Platform{"linux", "amd64", ""}, Platform{"unknown", "unknown", ""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.want.Match(tt.have); got != tt.match {
				t.Errorf("%v.Match(%v) = %v, want %v", tt.want, tt.have, got, tt.match)
			}
		})
	}
}

func entry(digestHex byte, os, arch, variant string) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Size: 100}
	d.Digest = digest.Digest("sha256:" + digestOf(digestHex))
	if os != "" {
		d.Platform = &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	return d
}

func digestOf(b byte) string {
	out := make([]byte, 64)
	for i := range out {
		out[i] = "0123456789abcdef"[b%16]
	}
	return string(out)
}

func TestChoosePlatform(t *testing.T) {
	index := []ocispec.Descriptor{
		entry(0, "", "", ""), // no platform
		entry(1, "linux", "amd64", ""),
		entry(2, "linux", "arm", "v6"),
		entry(3, "linux", "arm", "v7"),
		entry(4, "linux", "arm64", "v8"),
		entry(5, "unknown", "unknown", ""), // attestation
		entry(6, "linux", "amd64", "v2"),
	}
	tests := []struct {
		name string
		want Platform
		pick int // index entry, -1 for none
	}{
		{"Amd64", Platform{"linux", "amd64", ""}, 1},
		{"Amd64V3TakesBestLowerVariant", Platform{"linux", "amd64", "v3"}, 6},
		{"Amd64V2Exact", Platform{"linux", "amd64", "v2"}, 6},
		{"Arm64WithoutVariant", Platform{"linux", "arm64", ""}, 4},
		{"Arm64V8", Platform{"linux", "arm64", "v8"}, 4},
		{"ArmPrefersExactV7", Platform{"linux", "arm", "v7"}, 3},
		{"ArmDefaultIsV7", Platform{"linux", "arm", ""}, 3},
		{"ArmV6", Platform{"linux", "arm", "v6"}, 2},
		{"ArmV5HasNone", Platform{"linux", "arm", "v5"}, -1},
		{"S390xHasNone", Platform{"linux", "s390x", ""}, -1},
		{"AttestationNeverChosen", Platform{"unknown", "unknown", ""}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := choosePlatform(index, tt.want)
			if tt.pick < 0 {
				if ok {
					t.Fatalf("chose %v for %v, want none", got.Platform, tt.want)
				}
				return
			}
			if !ok || got.Digest != index[tt.pick].Digest {
				t.Fatalf("chose %v (%v), want entry %d", got.Platform, ok, tt.pick)
			}
		})
	}
	if got, want := available(index), "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, linux/amd64/v2"; got != want {
		t.Errorf("available() = %q, want %q", got, want)
	}
}
