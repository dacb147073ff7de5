package fetch

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// ErrInvalidSpec: a repository spec does not parse.
var ErrInvalidSpec = errors.New("invalid repository spec")

// Spec is a parsed repository spec, `[REGISTRY[:PORT]/]REPOSITORY[~/REGEX/][=TAG1,TAG2,...]`,
// as lstags reads them: a repository, normalised like an image reference, whose tags are
// selected by an unanchored RE2 regex over the listed tags, by name, or both.
type Spec struct {
	Repo   Reference      // Domain and Path; no Tag, no Digest
	Filter *regexp.Regexp // nil: no regex
	Named  []string       // tags named with "=", in the order given, without duplicates
}

// validTag reports whether t is a tag as the distribution spec allows it,
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. (As a package-level regexp, the 127
// repetitions cost every start of roots a compile of 1,700 allocations.)
func validTag(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, c := range []byte(t) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ParseSpec parses a repository spec. The regex is everything between "~/" and the last "/";
// "=" names tags, comma-separated. A tag or digest in the repository part, an empty or bad
// regex, an empty or malformed tag is an error wrapping ErrInvalidSpec whose message names the
// spec and how to fix it.
func ParseSpec(s string) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, errorf(ErrInvalidSpec, "repository spec %q: %s", s, fmt.Sprintf(format, args...))
	}
	repo, rest := s, ""
	var filter *regexp.Regexp
	if i := strings.Index(s, "~/"); i >= 0 {
		repo, rest = s[:i], s[i+2:]
		end := strings.LastIndexByte(rest, '/')
		if end < 0 {
			return bad("the regex after ~/ does not end with /: write REPOSITORY~/REGEX/")
		}
		expr := rest[:end]
		if expr == "" {
			return bad("empty regex between ~/ and /: drop ~// to select every tag")
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return bad("bad regex %q: %s", expr, regexCause(err))
		}
		filter, rest = re, rest[end+1:]
		if rest != "" && rest[0] != '=' {
			return bad("%q after the regex: only =TAG1,TAG2 may follow it", rest)
		}
	} else if i := strings.IndexByte(s, '='); i >= 0 {
		repo, rest = s[:i], s[i:]
	}
	spec := Spec{Filter: filter}
	if tags, ok := strings.CutPrefix(rest, "="); ok {
		seen := map[string]bool{}
		for _, t := range strings.Split(tags, ",") {
			switch {
			case t == "":
				return bad("an empty tag after =: write =TAG1,TAG2 with no empty item")
			case !validTag(t):
				return bad("tag %q: a tag is up to 128 letters, digits, _ . and -, not starting with . or -", t)
			case !seen[t]:
				seen[t] = true
				spec.Named = append(spec.Named, t)
			}
		}
	}
	if repo == "" {
		return bad("no repository: write [REGISTRY/]REPOSITORY[~/REGEX/][=TAGS]")
	}
	n, err := parseNamed(repo)
	switch {
	case err != nil:
		return bad("repository %q: %s", repo, err)
	case n.digest != "":
		return bad("a digest in the repository part: a spec selects tags; pull by digest with roots pull")
	case n.tag != "":
		return bad("a tag in the repository part: write %s=%s to name it", strings.TrimSuffix(repo, ":"+n.tag), n.tag)
	}
	spec.Repo = Reference{Domain: n.domain, Path: n.path}
	return spec, nil
}

// regexCause is the part of a regexp error that says what is wrong.
func regexCause(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code)
	}
	return err.Error()
}

// Lists reports whether the repository's tags are listed: with a regex, or when no tag is
// named. A spec of named tags alone checks only those.
func (s Spec) Lists() bool { return s.Filter != nil || len(s.Named) == 0 }

// Selects reports whether the spec selects tag among the listed (or cached) ones: the regex
// matches it, it is named, or the spec has neither.
func (s Spec) Selects(tag string) bool {
	if s.Filter == nil && len(s.Named) == 0 {
		return true
	}
	if s.Filter != nil && s.Filter.MatchString(tag) {
		return true
	}
	for _, n := range s.Named {
		if n == tag {
			return true
		}
	}
	return false
}

// String is the spec in canonical form: "docker.io/library/alpine~/^3\./=edge".
func (s Spec) String() string {
	out := s.Repo.Name()
	if s.Filter != nil {
		out += "~/" + s.Filter.String() + "/"
	}
	if len(s.Named) > 0 {
		out += "=" + strings.Join(s.Named, ",")
	}
	return out
}

// Tag is the reference to tag in the spec's repository.
func (s Spec) Tag(tag string) Reference {
	r := s.Repo
	r.Tag, r.Digest = tag, ""
	return r
}
