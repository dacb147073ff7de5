package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"

	"github.com/rootsdev/roots"
)

// TagsCmd lists and compares the tags of repositories, as lstags does.
type TagsCmd struct {
	Specs     []string `arg:"" optional:"" name:"spec" help:"[REGISTRY[:PORT]/]REPOSITORY[~/REGEX/][=TAG1,TAG2,...]: every tag, the tags an unanchored RE2 regex matches, named tags, or both. None with -f FILE."`
	JSON      bool     `name:"json" help:"Print a JSON array, one object per tag."`
	Jobs      int      `short:"j" default:"4" help:"Requests in flight at once per registry (and layers at once for --pull)."`
	Pull      bool     `short:"p" help:"Pull every selected tag the cache lacks (ABSENT, CHANGED, ASSUMED) into the cache, with no DEST, so that later pulls are warm."`
	DoNotFail bool     `short:"N" name:"do-not-fail" env:"ROOTS_DO_NOT_FAIL" help:"Exit 0 when a spec fails (it is still reported), and list a named tag the registry neither confirms nor denies as ASSUMED."`
	NoCreated bool     `name:"no-created" help:"Leave CREATED unknown: send only tags/list and HEAD requests (no manifest or config is read)."`
	fileFlag
	cacheFlags
	registryFlags
	platformFlags
}

// Help shows examples under `roots tags --help`.
func (TagsCmd) Help() string {
	return `Lists the tags each SPEC selects with their digests (HEAD requests, every page
of the tag list) and compares them with the cache's records:
  ABSENT      in the registry, not in the cache
  PRESENT     in both, same digest
  CHANGED     in both, digests differ (the tag moved since it was pulled)
  LOCAL-ONLY  in the cache only
  NOT-FOUND   named with =, in neither
  ASSUMED     named with =, neither confirmed nor denied by the registry (-N)
DIGEST is the registry's (an index's for a multi-platform image, as roots digest
prints it), LOCAL the cache's; CREATED comes from the image config (for an index,
the platform's that roots pull would choose), read once and kept in the cache.
A failing SPEC is reported on one line and the others are listed; the exit
status is then 1, or 0 with -N.

-f FILE reads the specs from YAML instead of arguments (lstags files work
unchanged), and jobs: and do-not-fail: unless --jobs or -N is given;
push-registry:, push-prefix: and interval: are for roots sync and ignored here:
  roots:              # or lstags:
    repositories:
      - alpine~/^3\./
      - quay.io/calico/cni=v1.6.1,v1.7.0
    jobs: 8

Examples:
  roots tags 'alpine~/^3\./'
  roots tags --json quay.io/calico/cni=v1.6.1,v1.7.0
  roots tags --pull -N debian~/^12/ registry.example.com/team/app=latest
  roots tags -f repositories.yaml`
}

// Run lists.
func (c *TagsCmd) Run(ctx context.Context, e *env, k *kong.Context) error {
	specs, _, err := c.load(k, c.Specs, fileTargets{Jobs: &c.Jobs, DoNotFail: &c.DoNotFail})
	if err != nil {
		return err
	}
	if c.Jobs < 1 {
		return usagef("--jobs %d: need at least 1", c.Jobs)
	}
	want, err := c.platform()
	if err != nil {
		return err
	}
	cacheDir, err := c.cacheDir(e)
	if err != nil {
		return err
	}
	if c.Pull && cacheDir == "" {
		return usagef("--pull with --cache=no: --pull fills the cache; drop --cache=no")
	}
	reg, err := c.options(e)
	if err != nil {
		return err
	}
	states, err := roots.Tags(ctx, specs, roots.TagsOptions{
		Cache: cacheDir, Jobs: c.Jobs, DoNotFail: c.DoNotFail, Pull: c.Pull, NoCreated: c.NoCreated,
		Platform: want, Registry: reg,
	})
	if err != nil && ctx.Err() != nil {
		return err
	}
	if perr := c.print(e, states); perr != nil {
		return perr
	}
	failed := c.report(e, err)
	if failed > 0 && !c.DoNotFail {
		return fmt.Errorf("%d of %d specs failed (-N lists the rest and exits 0)", failed, len(specs))
	}
	return nil
}

// print writes the table or the JSON array.
func (c *TagsCmd) print(e *env, states []roots.TagState) error {
	if c.JSON {
		if states == nil {
			states = []roots.TagState{}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(states)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tDIGEST\tLOCAL\tCREATED\tTAG")
	for _, s := range states {
		created := "-"
		if !s.Created.IsZero() {
			created = s.Created.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.State, orDash(short(s.Digest.String())), orDash(short(s.Local.String())), created, s.Reference())
	}
	return tw.Flush()
}

// report prints one line per failed spec and returns how many failed.
func (c *TagsCmd) report(e *env, err error) int {
	if err == nil {
		return 0
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	n := 0
	for _, one := range errs {
		var se *roots.SpecError
		if errors.As(one, &se) {
			n++
		}
		fmt.Fprintf(e.stderr, "roots: %s\n", oneLine(withHint(c.credentialHint(e, one))))
	}
	return max(n, 1)
}

// orDash is s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
