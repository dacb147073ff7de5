// Command roots brings registry images to every container engine without a
// daemon: `roots pull IMAGE DEST` leaves a root filesystem that chroot, runc or
// systemd-nspawn can use. This package is the command line only: flags,
// environment, output and exit codes; the work is done by fetch, cas and assemble.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes: failures 1, usage errors 2, interrupted 130 (128 + SIGINT, as shells report it).
const (
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// CLI is the command line.
type CLI struct {
	Pull       PullCmd       `cmd:"" help:"Pull an image into a root filesystem directory."`
	Bundle     BundleCmd     `cmd:"" help:"Pull an image into an OCI runtime bundle (DIR/rootfs, DIR/config.json) that runc runs as it is."`
	Push       PushCmd       `cmd:"" help:"Push a cached image to a registry; only blobs it lacks travel."`
	Copy       CopyCmd       `cmd:"" help:"Copy an image from registry to registry, byte for byte."`
	Commit     CommitCmd     `cmd:"" help:"Write what changed in a pulled directory as a new layer and image."`
	Umount     UmountCmd     `cmd:"" help:"Unmount an overlay destination and release its layers."`
	Digest     DigestCmd     `cmd:"" help:"Print an image's manifest digest, to tell whether it changed."`
	Inspect    InspectCmd    `cmd:"" help:"Show an image's digests, platform, config (entrypoint, cmd, env, user...) and layers, as skopeo inspect does."`
	Tags       TagsCmd       `cmd:"" help:"List repositories' tags and compare them with the cache (as lstags); --pull fills the cache."`
	Sync       SyncCmd       `cmd:"" help:"Copy repositories' tags to another registry (as lstags' push), once or as a --daemon."`
	Ls         LsCmd         `cmd:"" help:"List cached images and the destinations pulled with the cache."`
	Purge      PurgeCmd      `cmd:"" help:"Remove from the cache what is unused (everything, or by age or size)."`
	Check      CheckCmd      `cmd:"" help:"Verify every blob and layer in the cache and repair what is wrong."`
	Version    VersionCmd    `cmd:"" help:"Print roots' version."`
	Completion CompletionCmd `cmd:"" help:"Print a completion script for bash, zsh or fish."`
	Man        ManCmd        `cmd:"" hidden:"" help:"Print the manual page roots(1) (make man)."`

	VersionFlag kong.VersionFlag `name:"version" help:"Print roots' version and exit."`
}

// env is what a command gets besides its flags.
type env struct {
	stdout, stderr io.Writer
	terminal       bool // stderr is a terminal: show progress
	getenv         func(string) string
}

func main() {
	// net/http reports some protocol oddities of a server (a registry that sends more than its
	// Content-Length: "Unsolicited response received on idle HTTP channel") on the standard
	// logger, where nothing can catch them: roots speaks on stderr only through its errors.
	log.SetOutput(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile, err := profile(os.Getenv("ROOTS_PPROF"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "roots: ROOTS_PPROF: %v\n", err)
		os.Exit(exitUsage)
	}
	code := run(ctx, os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, terminal: isTerminal(os.Stderr), getenv: os.Getenv})
	stopProfile()
	stop()
	os.Exit(code)
}

// run parses args, runs the command and returns the exit code.
func run(ctx context.Context, args []string, e *env) int {
	return runModel(ctx, args, e, model(args))
}

// runModel is run with the struct kong builds its parser from (see model).
func runModel(ctx context.Context, args []string, e *env, cli any) int {
	exited := -1
	parser, err := kong.New(cli,
		kong.Name("roots"),
		kong.Description("Pull registry images into root filesystems for chroot, runc and systemd-nspawn, without a daemon."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Writers(e.stdout, e.stderr),
		kong.Exit(func(code int) { exited = code }),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(e),
		kong.Vars{"version": "roots " + version},
	)
	if err != nil {
		fmt.Fprintf(e.stderr, "roots: %v\n", err)
		return exitFailure
	}
	kctx, err := parser.Parse(args)
	if exited >= 0 { // --help
		return exited
	}
	if err != nil {
		see := "roots"
		var perr *kong.ParseError
		if errors.As(err, &perr) && perr.Context != nil && commandPath(perr.Context.Command()) != "" {
			see += " " + commandPath(perr.Context.Command())
		}
		fmt.Fprintf(e.stderr, "roots: %s (see %s --help)\n", oneLine(err.Error()), see)
		return exitUsage
	}
	if err := kctx.Run(); err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(e.stderr, "roots: %s (see roots %s --help)\n", oneLine(err.Error()), commandPath(kctx.Command()))
			return exitUsage
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// A signal (Ctrl-C, SIGTERM) stopped the command; what it made is taken back.
			fmt.Fprintln(e.stderr, "roots: interrupted")
			return exitInterrupted
		}
		fmt.Fprintf(e.stderr, "roots: %s\n", oneLine(withHint(err)))
		return exitFailure
	}
	return 0
}

// model is what kong builds its parser from: the whole CLI, or, when args start with the
// name of a command and ask for no help, a struct of that command's field and the global
// flags alone. Kong's model of every command costs about 13,000 allocations, which a process
// that has just started pays in page faults: 10–15 ms of a 70 ms warm overlay pull. Parsing,
// errors and usage of one command read only its own node and the global flags, so they are
// the same either way (TestModelOfOneCommand); the app's help, completion and the manual
// page list every command and get the whole CLI.
func model(args []string) any {
	if len(args) == 0 || wholeModel[args[0]] {
		return &CLI{}
	}
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "--" {
			return &CLI{}
		}
	}
	t := reflect.TypeOf(CLI{})
	var fields []reflect.StructField
	named := false
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if _, cmd := f.Tag.Lookup("cmd"); !cmd {
			fields = append(fields, f)
		} else if strings.ToLower(f.Name) == args[0] {
			fields, named = append(fields, f), true
		}
	}
	if !named { // a typo or a flag: kong answers it with the whole model
		return &CLI{}
	}
	return reflect.New(reflect.StructOf(fields)).Interface()
}

// wholeModel are the commands that read the whole model: the names of every command and flag.
var wholeModel = map[string]bool{"completion": true, "man": true}

// commandPath is the words of a kong command ("pull <image> <dest>") without its arguments:
// "pull", which a user can paste after "roots" and before "--help".
func commandPath(command string) string {
	var words []string
	for _, w := range strings.Fields(command) {
		if !strings.HasPrefix(w, "<") && !strings.HasPrefix(w, "[") {
			words = append(words, w)
		}
	}
	return strings.Join(words, " ")
}

// usageError is a mistake in the command line found after parsing.
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// oneLine keeps an error message on one line of stderr.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(e *env) error {
	fmt.Fprintf(e.stdout, "roots %s\n", version)
	return nil
}
