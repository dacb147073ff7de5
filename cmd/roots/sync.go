package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/alecthomas/kong"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
)

// SyncCmd copies the tags of repositories to another registry, once or as a daemon, as
// lstags' push does.
type SyncCmd struct {
	Specs     []string      `arg:"" optional:"" name:"spec" help:"[REGISTRY[:PORT]/]REPOSITORY[~/REGEX/][=TAG1,TAG2,...]: every tag, the tags an unanchored RE2 regex matches, named tags, or both. None with -f FILE."`
	To        string        `name:"to" short:"r" aliases:"push-registry" placeholder:"REGISTRY" help:"The registry to copy to: HOST[:PORT] (--push-registry, as lstags)."`
	Prefix    string        `name:"push-prefix" short:"P" placeholder:"PREFIX" help:"Where the repositories go in REGISTRY: \"\" (default) the source host without port, dots as slashes (docker/io/library/debian); \"/\" the path as it is; /mirror/x prepends mirror/x/."`
	DoNotFail bool          `short:"N" name:"do-not-fail" env:"ROOTS_DO_NOT_FAIL" help:"Try every tag: report a failed tag or spec and go on, exit 0."`
	DryRun    bool          `name:"dry-run" help:"Say what would be copied (WOULD-COPY); send only GET and HEAD requests."`
	JSON      bool          `name:"json" help:"Print one JSON object: every tag's result and the summary (with --daemon, one line per pass)."`
	Jobs      int           `short:"j" default:"4" help:"Requests in flight at once per registry while comparing, and blobs copied at once."`
	Daemon    bool          `short:"d" name:"daemon" help:"Sync again and again, --interval after each pass ends, until SIGTERM or SIGINT (exit 0); implies -N."`
	Interval  time.Duration `name:"interval" placeholder:"DURATION" help:"Pause between --daemon passes (default 5m)."`
	fileFlag
	cacheFlags
	registryFlags
}

// defaultInterval is --interval when --daemon does not say.
const defaultInterval = 5 * time.Minute

// Help shows examples under `roots sync --help`.
func (SyncCmd) Help() string {
	return `Copies every tag each SPEC selects to REGISTRY/<prefix><repository>:<tag>, as
roots copy copies (index and every platform, byte for byte, blobs the target has
or can mount never travel). A tag the target already names at the source's digest
costs one HEAD on each side. One line per tag, then a summary:
  COPIED      copied now
  UP-TO-DATE  the target had it
  WOULD-COPY  --dry-run: the target does not have it
  NOT-FOUND   named with =, the source does not have it (a failure)
  FAILED      the tag, or the whole SPEC, failed (the reason on stderr)
Without -N the first failure stops the run (exit 1). --daemon prints the lines of
what it copied or failed and one summary line per pass, and retries a registry
that was down on its next pass.

Examples:
  roots sync --to registry.example.com 'alpine~/^3\.2/' debian=12
  roots sync -r 127.0.0.1:5000 --push-prefix /mirror quay.io/coreos/flannel
  roots sync --daemon --interval 10m --to registry.example.com 'nginx~/^1\./'
  roots sync -f repositories.yaml               # roots: (or lstags:) repositories:, push-registry:, ...`
}

// Run syncs.
func (c *SyncCmd) Run(ctx context.Context, e *env, k *kong.Context) error {
	specs, opts, err := c.check(e, k)
	if err != nil {
		return err
	}
	out := &syncOutput{e: e, json: c.JSON, daemon: c.Daemon, hint: func(err error) error { return c.credentialHint(e, err) }}
	opts.Report = out.result
	if c.Daemon {
		return roots.SyncEvery(ctx, specs, c.Interval, opts, func(sum *roots.SyncSummary, err error) {
			out.pass(sum, err, ctx.Err() != nil)
		})
	}
	sum, err := roots.Sync(ctx, specs, opts)
	if perr := out.done(sum, err); perr != nil {
		return perr
	}
	switch {
	case err != nil && out.printed(err):
		return errors.New("sync stopped at the first failure (-N tries every tag)")
	case err != nil:
		return c.credentialHint(e, err)
	case sum.Failed > 0 && !c.DoNotFail:
		return fmt.Errorf("%d of %d tags failed", sum.Failed, sum.Tags)
	}
	return nil
}

// check checks the command line (and -f FILE), before any request, and makes the library's
// options.
func (c *SyncCmd) check(e *env, k *kong.Context) ([]fetch.Spec, roots.SyncOptions, error) {
	var opts roots.SyncOptions
	given := c.Interval // a file's interval is for the daemon: a single sync ignores it
	specs, file, err := c.load(k, c.Specs, fileTargets{
		PushRegistry: &c.To, PushPrefix: &c.Prefix, DoNotFail: &c.DoNotFail, Interval: &c.Interval, Jobs: &c.Jobs,
	})
	if err != nil {
		return nil, opts, err
	}
	if !c.Daemon && given == 0 {
		c.Interval = 0
	}
	if c.To == "" {
		return nil, opts, usagef("no --to REGISTRY (or push-registry: in -f FILE): name the registry to copy to")
	}
	for _, spec := range specs {
		if _, err := roots.SyncTarget(c.To, c.Prefix, spec.Repo); err != nil {
			if file != nil {
				return nil, opts, usagef("%s, %s: %v", file.where(keyPushRegistry), file.where(keyPushPrefix), err)
			}
			return nil, opts, usageError{err}
		}
	}
	switch {
	case c.Jobs < 1:
		return nil, opts, usagef("--jobs %d: need at least 1", c.Jobs)
	case c.Interval != 0 && !c.Daemon:
		return nil, opts, usagef("--interval without --daemon: a single sync does not wait")
	case c.Interval < 0:
		return nil, opts, usagef("--interval %v: must be positive", c.Interval)
	case c.Daemon && c.Interval == 0:
		c.Interval = defaultInterval
	}
	cacheDir, err := c.cacheDir(e)
	if err != nil {
		return nil, opts, err
	}
	reg, err := c.options(e)
	if err != nil {
		return nil, opts, err
	}
	return specs, roots.SyncOptions{
		To: c.To, Prefix: c.Prefix, DryRun: c.DryRun, DoNotFail: c.DoNotFail || c.Daemon,
		Jobs: c.Jobs, Cache: cacheDir, Registry: reg,
	}, nil
}

// syncOutput prints a sync's results: a line per tag (a daemon's: per tag copied or
// failed), the reasons of failures on stderr, and a summary; or JSON.
type syncOutput struct {
	e      *env
	json   bool
	daemon bool
	hint   func(error) error // the credential sources tried, for an authorization failure

	mu      sync.Mutex
	results []roots.SyncResult // JSON: this pass's
	last    error              // the last failure printed
}

// printed reports whether err is the failure result printed last.
func (o *syncOutput) printed(err error) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last != nil && errors.Is(err, o.last)
}

// result prints or keeps one result (roots.SyncOptions.Report).
func (o *syncOutput) result(r roots.SyncResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.Err != nil {
		fmt.Fprintf(o.e.stderr, "roots: %s\n", oneLine(withHint(o.hint(r.Err))))
		o.last = r.Err
	}
	if o.json {
		o.results = append(o.results, r)
		return
	}
	if o.daemon && (r.State == roots.SyncUpToDate || r.State == roots.SyncWouldCopy) {
		return
	}
	fmt.Fprintf(o.e.stdout, "%-10s  %s → %s\n", r.State, r.Source, r.Target)
}

// syncJSON is what --json prints: per run, or per daemon pass.
type syncJSON struct {
	Results []roots.SyncResult `json:"results"`
	Summary *roots.SyncSummary `json:"summary"`
	Error   string             `json:"error,omitempty"` // what stopped the run
}

// done prints the summary of a run that err (if not nil) stopped.
func (o *syncOutput) done(sum *roots.SyncSummary, err error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.json {
		out := syncJSON{Results: o.results, Summary: sum}
		if out.Results == nil {
			out.Results = []roots.SyncResult{}
		}
		if err != nil {
			out.Error = err.Error()
		}
		o.results = nil
		enc := json.NewEncoder(o.e.stdout)
		if !o.daemon {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(out)
	}
	line := summaryLine(sum)
	if o.daemon {
		line = sum.Started.UTC().Format(time.RFC3339) + " " + line
	}
	_, werr := fmt.Fprintln(o.e.stdout, line)
	return werr
}

// pass prints one daemon pass; stopped: a signal ended it.
func (o *syncOutput) pass(sum *roots.SyncSummary, err error, stopped bool) {
	if stopped {
		err = fmt.Errorf("stopped by a signal")
	}
	o.done(sum, err)
	if stopped && !o.json {
		fmt.Fprintf(o.e.stderr, "roots: sync stopped by a signal; no manifest was written without its blobs\n")
	}
}

// summaryLine is one line of counts: "3 tags: 1 copied, 2 up-to-date, 0 failed; blobs: 2
// uploaded (1.2 KiB), 1 mounted, 0 existing; 0.4s".
func summaryLine(s *roots.SyncSummary) string {
	tags := fmt.Sprintf("%d tags: %d copied, %d up-to-date", s.Tags, s.Copied, s.UpToDate)
	if s.WouldCopy > 0 {
		tags += fmt.Sprintf(", %d would copy", s.WouldCopy)
	}
	return fmt.Sprintf("synced %s, %d failed; blobs: %d uploaded (%s), %d mounted, %d existing; %d manifests written; %.1fs",
		tags, s.Failed, s.BlobsUploaded, humanBytes(s.BytesUploaded), s.BlobsMounted, s.BlobsExisting, s.ManifestsWritten, s.Duration.Seconds())
}
