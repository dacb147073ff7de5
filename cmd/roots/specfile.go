package main

// -f FILE: the repository specs and settings of roots tags and roots sync in YAML, as lstags
// reads them. The file is walked as a yaml.Node tree (go.yaml.in/yaml/v3), not decoded into a
// struct, so that every mistake is reported with the file, the line and the key it is at.

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rootsdev/roots/fetch"
)

// The keys under the root key, in the order error messages list them.
const (
	keyRepositories = "repositories"
	keyPushRegistry = "push-registry"
	keyPushPrefix   = "push-prefix"
	keyDoNotFail    = "do-not-fail"
	keyInterval     = "interval"
	keyJobs         = "jobs"
)

var fileKeys = []string{keyRepositories, keyPushRegistry, keyPushPrefix, keyDoNotFail, keyInterval, keyJobs}

// The root keys: roots' own, and lstags', so that lstags files work unchanged. Other keys at the
// top level are left to other tools (lstags' "shared YAMLs").
const (
	rootRoots  = "roots"
	rootLstags = "lstags"
)

// specFile is what a -f FILE says. A setting the file leaves out is nil, so that only the
// settings it gives fill flags the command line did not set (see specFile.apply).
type specFile struct {
	Name  string       // the path as given
	Root  string       // rootRoots or rootLstags
	Specs []fetch.Spec // at least one

	PushRegistry *string
	PushPrefix   *string
	DoNotFail    *bool
	Interval     *time.Duration // positive
	Jobs         *int           // 1 or more

	lines map[string]int // the line of each key the file gives
}

// where is "FILE:LINE: KEY", the place of a setting the file gives, for an error a command
// finds in its value later (an unreachable push-registry, say); "FILE" when it gives none.
func (f *specFile) where(key string) string {
	if line, ok := f.lines[key]; ok {
		return fmt.Sprintf("%s:%d: %s", f.Name, line, key)
	}
	return f.Name
}

// loadSpecFile reads and parses the YAML file name. Every error names the file and, when it
// is about a place in it, the line and the key; a bad spec wraps fetch.ErrInvalidSpec.
func loadSpecFile(name string) (*specFile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("-f: %w", err)
	}
	return parseSpecFile(name, data)
}

// parseSpecFile parses data, the contents of the file name.
func parseSpecFile(name string, data []byte) (*specFile, error) {
	p := fileParser{name: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, p.syntax(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, p.errorf(nil, "", "empty: want %s: (or %s:) with %s:", rootRoots, rootLstags, keyRepositories)
	}
	top := deref(doc.Content[0])
	if top.Kind != yaml.MappingNode {
		return nil, p.errorf(top, "", "the top level is %s: want a mapping with a %s: (or %s:) key", kindOf(top), rootRoots, rootLstags)
	}
	var rootKey, body *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i]
		if k.Value != rootRoots && k.Value != rootLstags {
			continue // another tool's
		}
		if rootKey != nil {
			return nil, p.errorf(k, "", "%s: and %s: (line %d) both at the top level: keep one", k.Value, rootKey.Value, rootKey.Line)
		}
		rootKey, body = k, deref(top.Content[i+1])
	}
	if rootKey == nil {
		return nil, p.errorf(nil, "", "no %s: key at the top level (nor %s:, as lstags files have): put %s: and the settings under it", rootRoots, rootLstags, keyRepositories)
	}
	f := &specFile{Name: name, Root: rootKey.Value, lines: map[string]int{}}
	if body.Kind != yaml.MappingNode {
		return nil, p.errorf(body, rootKey.Value, "%s: want a mapping with %s: and the settings", kindOf(body), keyRepositories)
	}
	if err := p.settings(f, rootKey, body); err != nil {
		return nil, err
	}
	return f, nil
}

// fileParser makes the errors of one file.
type fileParser struct{ name string }

// errorf is an error at n (nil: the whole file) about key ("": none).
func (p fileParser) errorf(n *yaml.Node, key, format string, args ...any) error {
	where := p.name
	if n != nil && n.Line > 0 {
		where += ":" + strconv.Itoa(n.Line)
	}
	if key != "" {
		where += ": " + key
	}
	return fmt.Errorf("%s: %w", where, fmt.Errorf(format, args...))
}

// syntaxLine is the line yaml puts in front of a syntax error.
var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntax turns a YAML syntax error into "FILE:LINE: what".
func (p fileParser) syntax(err error) error {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: not YAML: %s", p.name, m[1], msg[len(m[0]):])
	}
	return fmt.Errorf("%s: not YAML: %s", p.name, strings.TrimPrefix(msg, "yaml: "))
}

// settings reads the keys under the root key into f.
func (p fileParser) settings(f *specFile, rootKey, body *yaml.Node) error {
	var repos *yaml.Node
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i], deref(body.Content[i+1])
		if first, ok := f.lines[k.Value]; ok {
			return p.errorf(k, k.Value, "given twice (first at line %d)", first)
		}
		var err error
		switch k.Value {
		case keyRepositories:
			repos = v
		case keyPushRegistry:
			f.PushRegistry, err = p.str(k, v)
		case keyPushPrefix:
			f.PushPrefix, err = p.str(k, v)
		case keyDoNotFail:
			f.DoNotFail, err = p.boolean(k, v)
		case keyInterval:
			f.Interval, err = p.duration(k, v)
		case keyJobs:
			f.Jobs, err = p.jobs(k, v)
		default:
			return p.errorf(k, "", "unknown key %q under %s: (known: %s)", k.Value, rootKey.Value, strings.Join(fileKeys, ", "))
		}
		if err != nil {
			return err
		}
		f.lines[k.Value] = k.Line
	}
	if repos == nil {
		return p.errorf(rootKey, rootKey.Value, "no %s: list the repository specs under it", keyRepositories)
	}
	specs, err := p.repositories(f.Root, body, repos)
	f.Specs = specs
	return err
}

// repositories parses the list of specs v. Under lstags:, lstags' REPOSITORY:TAG is read as
// REPOSITORY=TAG, which is what lstags means by it; under roots: it is the error it is as an
// argument.
func (p fileParser) repositories(root string, body, v *yaml.Node) ([]fetch.Spec, error) {
	if isNull(v) || v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
		return nil, p.errorf(v, keyRepositories, "empty: list at least one repository spec")
	}
	if v.Kind != yaml.SequenceNode {
		return nil, p.errorf(v, keyRepositories, "%s: want a list of repository specs (- SPEC on each line)", kindOf(v))
	}
	specs := make([]fetch.Spec, 0, len(v.Content))
	for i, item := range v.Content {
		item = deref(item)
		key := fmt.Sprintf("%s[%d]", keyRepositories, i)
		if item.Kind != yaml.ScalarNode || isNull(item) {
			return nil, p.errorf(item, key, "%s: want a repository spec", kindOf(item))
		}
		s := item.Value
		if root == rootLstags {
			s = lstagsSpec(s)
		}
		spec, err := fetch.ParseSpec(s)
		if err != nil {
			return nil, p.errorf(item, key, "%w", err)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// lstagsSpec turns lstags' REPOSITORY:TAG into REPOSITORY=TAG: a colon after the last slash,
// in a spec with no regex and no named tags.
func lstagsSpec(s string) string {
	if strings.ContainsAny(s, "~=@") {
		return s
	}
	i := strings.LastIndexByte(s, ':')
	if i <= strings.LastIndexByte(s, '/') {
		return s
	}
	return s[:i] + "=" + s[i+1:]
}

// str reads a string setting.
func (p fileParser) str(k, v *yaml.Node) (*string, error) {
	if v.Kind != yaml.ScalarNode || isNull(v) {
		return nil, p.errorf(v, k.Value, "%s: want a string", kindOf(v))
	}
	s := v.Value
	return &s, nil
}

// boolean reads a true/false setting.
func (p fileParser) boolean(k, v *yaml.Node) (*bool, error) {
	var b bool
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
		return nil, p.errorf(v, k.Value, "%s: want true or false", kindOf(v))
	}
	return &b, nil
}

// duration reads a positive Go duration (30s, 5m, 1h30m).
func (p fileParser) duration(k, v *yaml.Node) (*time.Duration, error) {
	if v.Kind != yaml.ScalarNode || isNull(v) {
		return nil, p.errorf(v, k.Value, "%s: want a duration such as 30s, 5m or 1h30m", kindOf(v))
	}
	d, err := time.ParseDuration(v.Value)
	if err != nil || d <= 0 {
		return nil, p.errorf(v, k.Value, "%q: want a positive duration such as 30s, 5m or 1h30m", v.Value)
	}
	return &d, nil
}

// jobs reads a count of 1 or more.
func (p fileParser) jobs(k, v *yaml.Node) (*int, error) {
	var n int
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&n) != nil {
		return nil, p.errorf(v, k.Value, "%s: want a whole number, 1 or more", kindOf(v))
	}
	if n < 1 {
		return nil, p.errorf(v, k.Value, "%d: need at least 1", n)
	}
	return &n, nil
}

// deref is the node an alias (*anchor) stands for, or n.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an empty value (key: with nothing after it, ~, null).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindOf names what n is, for "got" in messages: "a list", "a mapping", "nothing", or the
// scalar as written.
func kindOf(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case isNull(n):
		return "nothing"
	default:
		return strconv.Quote(n.Value)
	}
}
