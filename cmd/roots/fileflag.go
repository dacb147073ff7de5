package main

// -f FILE on the command line: where a command's repository specs come from, and which of its
// flags a file's settings fill. roots tags uses it; roots sync is meant to, in the same lines.

import (
	"os"
	"time"

	"github.com/alecthomas/kong"

	"github.com/rootsdev/roots/fetch"
)

// fileFlag is -f/--file FILE. A command embeds it and calls load in Run.
type fileFlag struct {
	File string `short:"f" name:"file" type:"existingfile" placeholder:"FILE" help:"Read the repository specs from a YAML file instead of SPEC arguments: roots: (or lstags:, so lstags files work unchanged) with repositories: and optionally push-registry:, push-prefix:, do-not-fail:, interval:, jobs:. Flags given override the file."`
}

// fileTargets point at the flag fields of a command that a file's settings fill. A nil field
// is a setting the command reads and ignores (roots tags: push-registry, push-prefix and
// interval), so that one file serves tags and sync, as one file serves lstags' modes.
type fileTargets struct {
	PushRegistry *string
	PushPrefix   *string
	DoNotFail    *bool
	Interval     *time.Duration
	Jobs         *int
}

// load returns the command's repository specs: the file's with -f, else args parsed. Specs in
// both or in neither, a bad file or a bad spec is a usage error. With -f, the file's settings
// fill the fields of t whose flags were not given (see flagsGiven), and the file is returned
// too, so that a command can place an error it finds later in a value (specFile.where).
func (f fileFlag) load(k *kong.Context, args []string, t fileTargets) ([]fetch.Spec, *specFile, error) {
	if f.File == "" {
		if len(args) == 0 {
			return nil, nil, usagef("no SPEC: name repositories as arguments or in a -f FILE")
		}
		specs, err := parseSpecs(args)
		return specs, nil, err
	}
	if len(args) > 0 {
		return nil, nil, usagef("-f %s and SPEC arguments: give the repositories in the file or as arguments, not both", f.File)
	}
	file, err := loadSpecFile(f.File)
	if err != nil {
		return nil, nil, usageError{err}
	}
	file.apply(flagsGiven(k), t)
	return file.Specs, file, nil
}

// parseSpecs parses repository specs given as arguments; a bad one is a usage error.
func parseSpecs(args []string) ([]fetch.Spec, error) {
	specs := make([]fetch.Spec, 0, len(args))
	for _, s := range args {
		spec, err := fetch.ParseSpec(s)
		if err != nil {
			return nil, usageError{err}
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// givenFlags is the set of flag fields set on the command line or by their environment
// variable, each named by its address (&c.Jobs), which is the same whatever alias or short
// form set it.
type givenFlags map[any]bool

// flagsGiven is the flags k parsed from the command line, and those whose environment variable
// is set (kong read it, so it is the user's choice too): the command line wins over the
// environment, which wins over a file, which wins over a default.
func flagsGiven(k *kong.Context) givenFlags {
	given := givenFlags{}
	add := func(fl *kong.Flag) {
		if fl.Target.CanAddr() {
			given[fl.Target.Addr().Interface()] = true
		}
	}
	for _, p := range k.Path {
		if p.Flag != nil && !p.Resolved {
			add(p.Flag)
		}
	}
	for _, fl := range k.Flags() {
		for _, name := range fl.Tag.Envs {
			if _, ok := os.LookupEnv(name); ok {
				add(fl)
			}
		}
	}
	return given
}

// apply fills the fields of t that the file sets and given lacks.
func (f *specFile) apply(given givenFlags, t fileTargets) {
	fill(t.PushRegistry, f.PushRegistry, given)
	fill(t.PushPrefix, f.PushPrefix, given)
	fill(t.DoNotFail, f.DoNotFail, given)
	fill(t.Interval, f.Interval, given)
	fill(t.Jobs, f.Jobs, given)
}

// fill sets *field to *value when the command takes the setting (field), the file gives it
// (value) and its flag was not given.
func fill[T any](field, value *T, given givenFlags) {
	if field != nil && value != nil && !given[field] {
		*field = *value
	}
}
