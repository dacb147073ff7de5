package fetch

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    string // canonical form; "" when an error is wanted
		lists   bool
		errWord string // in the error message
	}{
		{"alpine", "docker.io/library/alpine", true, ""},
		{"alpine~/^3\\./", "docker.io/library/alpine~/^3\\./", true, ""},
		{"quay.io/calico/cni=v1.6.1,v1.7.0", "quay.io/calico/cni=v1.6.1,v1.7.0", false, ""},
		{"127.0.0.1:5000/a/b~/^v1/=latest,edge", "127.0.0.1:5000/a/b~/^v1/=latest,edge", true, ""},
		{"gcr.io/google-containers/hyperkube~/^v1\\.(9|10)\\./", "gcr.io/google-containers/hyperkube~/^v1\\.(9|10)\\./", true, ""},
		{"host.io/r~/a/b/", "host.io/r~/a/b/", true, ""}, // the regex ends at the last slash
		{"alpine=3.5,3.5", "docker.io/library/alpine=3.5", false, ""},
		{"alpine~//", "", false, "empty regex"},
		{"alpine~/[/", "", false, "bad regex"},
		{"alpine~/^3", "", false, "does not end with /"},
		{"alpine~/x/y", "", false, "after the regex"},
		{"alpine=", "", false, "empty tag"},
		{"alpine=a,,b", "", false, "empty tag"},
		{"alpine=-bad", "", false, `tag "-bad"`},
		{"alpine:3.5", "", false, "write alpine=3.5"},
		{"host:5000/app:1~/x/", "", false, "a tag in the repository part"},
		{"alpine@sha256:" + strings.Repeat("a", 64), "", false, "a digest"},
		{"Alpine", "", false, "lowercase"},
		{"=x", "", false, "no repository"},
		{"", "", false, "no repository"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSpec(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseSpec(%q) = %v, want an error", tt.in, s)
				}
				if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tt.errWord) || !strings.Contains(err.Error(), tt.in) {
					t.Fatalf("error %q: want ErrInvalidSpec naming the spec and %q", err, tt.errWord)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != tt.want || s.Lists() != tt.lists {
				t.Fatalf("ParseSpec(%q) = %s (lists %v), want %s (lists %v)", tt.in, s, s.Lists(), tt.want, tt.lists)
			}
		})
	}
}

func TestSpecSelects(t *testing.T) {
	tests := []struct {
		spec string
		tag  string
		want bool
	}{
		{"alpine", "anything", true},
		{"alpine~/^3\\./", "3.5", true},
		{"alpine~/^3\\./", "edge", false},
		{"alpine~/3/", "v3-rc", true}, // unanchored
		{"alpine=edge", "edge", true},
		{"alpine=edge", "3.5", false},
		{"alpine~/^3/=edge", "edge", true},
		{"alpine~/^3/=edge", "latest", false},
	}
	for _, tt := range tests {
		s, err := ParseSpec(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Selects(tt.tag); got != tt.want {
			t.Errorf("%s selects %s = %v, want %v", tt.spec, tt.tag, got, tt.want)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"alpine", "a~/^v/=x,y", "h:5000/r~/a/b/", "a:1", "a=", "a~//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSpec(in)
		if err != nil {
			return
		}
		again, err := ParseSpec(s.String())
		if err != nil || again.String() != s.String() {
			t.Fatalf("%q → %q does not parse back the same: %v", in, s, err)
		}
	})
}

// TestValidTag: the distribution spec's tag grammar, [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func TestValidTag(t *testing.T) {
	re := regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	for _, tag := range []string{
		"latest", "v1.2.3", "_x", "A-b_c.d", "1", strings.Repeat("a", 128), strings.Repeat("a", 129),
		"", ".x", "-x", "x/y", "x:y", "x@y", "é", "x y", "x\x00", "ß", "x+y",
	} {
		if got, want := validTag(tag), re.MatchString(tag); got != want {
			t.Errorf("validTag(%q) = %v, want %v", tag, got, want)
		}
	}
}
