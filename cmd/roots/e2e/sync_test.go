package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// syncImage is a two-layer image whose bottom layer every syncImage shares.
func syncImage(name string) registrytest.Image {
	return registrytest.Image{Layers: []registrytest.Layer{
		registrytest.GzipLayer(registrytest.File("base", "the shared base\n")),
		registrytest.GzipLayer(registrytest.File(name, name+"\n")),
	}}
}

// onlyReads fails t if reqs hold anything but GET and HEAD (authentication challenges aside).
func onlyReads(t *testing.T, what string, reqs []registrytest.Request) {
	t.Helper()
	for _, q := range reqs {
		if q.Method != "GET" && q.Method != "HEAD" {
			t.Errorf("%s was sent %s %s", what, q.Method, q.Path)
		}
	}
}

// TestSyncCommand: roots sync to an empty registry (a line per tag, a summary; the shared
// base layer uploaded once and mounted), again with --json (UP-TO-DATE, one HEAD per tag on
// the target), --dry-run (GET and HEAD only), a missing repository with and without -N, and
// usage errors that send no request.
func TestSyncCommand(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	src.Push(t, "app/one", "1", syncImage("one"))
	src.Push(t, "app/two", "1", syncImage("two"))
	one, two := src.Host+"/app/one", src.Host+"/app/two"
	to := dst.Host + "/127/0/0/1/app/"

	res := Roots(t, nil, "sync", "--to", dst.Host, one, two)
	want := "COPIED      " + one + ":1 → " + to + "one:1\nCOPIED      " + two + ":1 → " + to + "two:1\n"
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, want) || res.Stderr != "" {
		t.Fatalf("roots sync: exit %d\n%s\nwant\n%s\nstderr: %s", res.Code, res.Stdout, want, res.Stderr)
	}
	if !strings.Contains(res.Stdout, "synced 2 tags: 2 copied, 0 up-to-date, 0 failed; blobs: 5 uploaded") || !strings.Contains(res.Stdout, "1 mounted, 0 existing; 2 manifests written") {
		t.Errorf("summary: %s", res.Stdout)
	}
	n := registrytest.Count(dst.Requests())
	t.Logf("first sync: target %+v", n)
	if n.BlobPuts != 5 || n.Mounts != 1 || n.ManifestPuts != 2 {
		t.Errorf("first sync: target requests %+v, want 5 blob uploads, the base mounted once, 2 manifest PUTs", n)
	}

	dst.ResetRequests()
	res = Roots(t, nil, "sync", "--json", "-r", dst.Host, one, two)
	var out struct {
		Results []map[string]any `json:"results"`
		Summary map[string]any   `json:"summary"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &out); res.Code != 0 || err != nil || len(out.Results) != 2 {
		t.Fatalf("roots sync --json: exit %d, %v: %s %s", res.Code, err, res.Stdout, res.Stderr)
	}
	for _, r := range out.Results {
		if r["state"] != "UP-TO-DATE" || !strings.HasPrefix(r["target"].(string), to) || !strings.HasPrefix(r["digest"].(string), "sha256:") {
			t.Errorf("--json result %v", r)
		}
	}
	for k, v := range map[string]float64{"tags": 2, "upToDate": 2, "copied": 0, "blobsUploaded": 0, "manifestsWritten": 0} {
		if out.Summary[k] != v {
			t.Errorf("--json summary %q = %v, want %v", k, out.Summary[k], v)
		}
	}
	if reqs := dst.Requests(); len(reqs) != 2 || reqs[0].Method != "HEAD" || reqs[1].Method != "HEAD" {
		t.Errorf("again: the target was sent %v, want 2 HEADs", reqs)
	}

	t.Run("DryRun", func(t *testing.T) {
		src.ResetRequests()
		dst.ResetRequests()
		res := Roots(t, nil, "sync", "--dry-run", "--push-registry", dst.Host, "--push-prefix", "/dry", one, two)
		if res.Code != 0 || strings.Count(res.Stdout, "WOULD-COPY  ") != 2 || !strings.Contains(res.Stdout, "2 would copy") {
			t.Errorf("exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		onlyReads(t, "the source", src.Requests())
		onlyReads(t, "the target", dst.Requests())
	})

	missing := src.Host + "/no/such"
	for _, tt := range []struct {
		name  string
		flags []string
		code  int
		lines int // on stdout: per tag, and the summary
	}{{"Fail", nil, 1, 2}, {"DoNotFail", []string{"-N"}, 0, 3}} {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"sync", "--to", dst.Host}, tt.flags...), missing, one+"=1")
			res := Roots(t, nil, args...)
			lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
			if res.Code != tt.code || len(lines) != tt.lines || !strings.HasPrefix(lines[0], "FAILED      "+missing+" → ") {
				t.Errorf("exit %d, want %d; stdout:\n%s", res.Code, tt.code, res.Stdout)
			}
			first, _, _ := strings.Cut(res.Stderr, "\n")
			if !strings.Contains(first, missing) || !strings.Contains(first, "unknown") {
				t.Errorf("stderr %q: want a line naming %s and why", res.Stderr, missing)
			}
		})
	}

	src.ResetRequests()
	dst.ResetRequests()
	for _, args := range [][]string{
		{"sync", one},                               // no --to
		{"sync", "--to", dst.Host},                  // no spec
		{"sync", "--to", dst.Host, one + ":1"},      // a tag in the repository part
		{"sync", "--to", dst.Host + "/x", one},      // a path in --to
		{"sync", "--to", dst.Host, "-P", "/A", one}, // no repository name
		{"sync", "--to", dst.Host, "--jobs", "0", one},
	} {
		if res := Roots(t, nil, args...); res.Code != 2 || strings.Count(res.Stderr, "\n") != 1 || res.Stdout != "" {
			t.Errorf("roots %v: exit %d, %q; want a one-line usage error", args, res.Code, res.Stderr)
		}
	}
	if len(src.Requests())+len(dst.Requests()) != 0 {
		t.Errorf("usage errors sent requests: %v %v", src.Requests(), dst.Requests())
	}
}

// daemon is roots sync --daemon running, its stdout read line by line.
type daemon struct {
	cmd     *exec.Cmd
	lines   chan string
	mu      sync.Mutex
	stderr  bytes.Buffer
	done    chan struct{} // closed once it exited, with waitErr
	waitErr error
}

func (d *daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.Write(p)
}

func (d *daemon) errors() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// startDaemon starts roots with args; it is killed (SIGQUIT first, for its stacks) if the
// test ends with it running.
func startDaemon(t *testing.T, args ...string) *daemon {
	d := &daemon{cmd: exec.Command(Bin(), args...), lines: make(chan string, 1000), done: make(chan struct{})}
	d.cmd.Env = Env(t)
	d.cmd.Stderr = d
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			d.lines <- s.Text()
		}
		close(d.lines)
		d.waitErr = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-d.done:
			case <-time.After(5 * time.Second):
				d.cmd.Process.Kill()
			}
			t.Logf("daemon stderr:\n%s", d.errors())
		}
	})
	return d
}

// stop sends sig and fails the test unless the command exits with code within 10 s.
func (d *daemon) stop(t *testing.T, sig syscall.Signal, code int) {
	t.Helper()
	d.cmd.Process.Signal(sig)
	sent := time.Now()
	select {
	case <-d.done:
		if got := ExitCode(t, d.waitErr); got != code {
			t.Errorf("after %v: exit %d after %v, want %d; stderr:\n%s", sig, got, time.Since(sent), code, d.errors())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit within 10s of %v", sig)
	}
}

// await reads lines until one matches re, and fails the test past deadline.
func (d *daemon) await(t *testing.T, deadline time.Time, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(time.Until(deadline))
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("the daemon ended before a line matching %q; stderr:\n%s", re, d.errors())
			}
			t.Logf("daemon: %s", l)
			if rx.MatchString(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line matching %q in time; stderr:\n%s", re, d.errors())
		}
	}
}

// TestSyncDaemon: roots sync --daemon copies, picks up a tag pushed later on its next pass,
// reports its source down for a pass and catches up on the next, prints one summary line per
// pass with its time, and exits 0 within 10 s of SIGTERM.
func TestSyncDaemon(t *testing.T) {
	deadline := time.Now().Add(90 * time.Second)
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	var down atomic.Bool
	front := src.FaultFront(t, registrytest.Fault{Kind: registrytest.Status, Code: 503, Match: func(*http.Request) bool { return down.Load() }})
	src.Push(t, "app", "1", syncImage("1"))
	app := front.Host + "/app"
	d := startDaemon(t, "sync", "--daemon", "--interval", "300ms", "--to", dst.Host, "--push-prefix", "/", app)

	stamp := `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ synced `
	d.await(t, deadline, `^COPIED      `+regexp.QuoteMeta(app+":1 → "+dst.Host+"/app:1")+`$`)
	d.await(t, deadline, stamp+`1 tags: 1 copied`)
	d.await(t, deadline, stamp+`1 tags: 0 copied, 1 up-to-date, 0 failed; blobs: 0 uploaded`)

	src.Push(t, "app", "2", syncImage("2"))
	d.await(t, deadline, `^COPIED      `+regexp.QuoteMeta(app+":2"))
	d.await(t, deadline, stamp+`2 tags: 1 copied, 1 up-to-date, 0 failed; blobs: 2 uploaded .*, 0 mounted, 1 existing`)

	down.Store(true)
	d.await(t, deadline, `^FAILED      `+regexp.QuoteMeta(app+" → "+dst.Host+"/app")+`$`)
	d.await(t, deadline, stamp+`1 tags: 0 copied, 0 up-to-date, 1 failed`)
	src.Push(t, "app", "3", syncImage("3"))
	down.Store(false)
	d.await(t, deadline, `^COPIED      `+regexp.QuoteMeta(app+":3"))
	d.await(t, deadline, stamp+`3 tags: 1 copied, 2 up-to-date, 0 failed`)
	if e := d.errors(); !strings.Contains(e, app) || !strings.Contains(e, "503") {
		t.Errorf("stderr %q: want the pass with its source down reported", e)
	}

	d.stop(t, syscall.SIGTERM, 0)
}

// TestSyncDaemonJSON: with --json a daemon prints one JSON object per pass, on one line, and
// SIGINT ends it with exit 0 as SIGTERM does.
func TestSyncDaemonJSON(t *testing.T) {
	deadline := time.Now().Add(60 * time.Second)
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	src.Push(t, "app", "1", syncImage("1"))
	d := startDaemon(t, "sync", "-d", "--json", "--interval", "300ms", "-r", dst.Host, src.Host+"/app")
	for _, want := range []string{"COPIED", "UP-TO-DATE"} {
		var pass struct {
			Results []struct{ State, Target string }
			Summary struct{ Tags int }
		}
		line := d.await(t, deadline, `^\{"results":`)
		if err := json.Unmarshal([]byte(line), &pass); err != nil || len(pass.Results) != 1 || pass.Results[0].State != want || pass.Summary.Tags != 1 {
			t.Errorf("pass %q (%v): want one tag, %s", line, err, want)
		}
	}
	d.stop(t, syscall.SIGINT, 0)
}

// TestSyncDaemonStopsMidCopy: SIGTERM while a daemon streams a blob from a slow source ends it
// with exit 0 within 10 s, and the target gets no manifest: its tag never names an image
// whose blobs it lacks.
func TestSyncDaemonStopsMidCopy(t *testing.T) {
	deadline := time.Now().Add(60 * time.Second)
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	slow := src.FaultFront(t, registrytest.Fault{Kind: registrytest.Slow, Delay: 500 * time.Millisecond}) // 32 KiB per 500 ms
	src.Push(t, "big", "1", registrytest.Image{Layers: []registrytest.Layer{
		registrytest.GzipLayer(registrytest.Entry{Name: "noise", Body: noise(7, 512<<10)}),
	}})
	d := startDaemon(t, "sync", "-d", "--interval", "300ms", "--jobs", "1", "-r", dst.Host, "-P", "/", slow.Host+"/big")
	for registrytest.Count(dst.Requests()).Posts == 0 { // an upload session: the blob is under way
		if time.Now().After(deadline) {
			t.Fatalf("no upload started; stderr:\n%s", d.errors())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	sent := time.Now()
	d.stop(t, syscall.SIGTERM, 0)
	n := registrytest.Count(dst.Requests())
	stored := 0 // blob uploads the target completed; a PUT cut by the stop is counted in n, not here
	for _, q := range dst.Requests() {
		if q.Method == "PUT" && strings.Contains(q.Path, "/blobs/uploads/") && q.Status == http.StatusCreated {
			stored++
		}
	}
	t.Logf("stopped %v after SIGTERM; target requests %+v, %d blobs stored; stderr: %s", time.Since(sent).Round(time.Millisecond), n, stored, d.errors())
	if n.ManifestPuts != 0 || stored == 2 {
		t.Errorf("target requests %+v, %d blobs stored: a manifest was written, or every blob", n, stored)
	}
	if !strings.Contains(d.errors(), "stopped by a signal") {
		t.Errorf("stderr %q: want the stop said", d.errors())
	}
}

// TestSyncInterrupted: a single sync stopped by SIGINT mid-copy is interrupted as any command
// is (exit 130), and writes no manifest.
func TestSyncInterrupted(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	slow := src.FaultFront(t, registrytest.Fault{Kind: registrytest.Slow, Delay: 500 * time.Millisecond})
	src.Push(t, "big", "1", registrytest.Image{Layers: []registrytest.Layer{
		registrytest.GzipLayer(registrytest.Entry{Name: "noise", Body: noise(8, 512<<10)}),
	}})
	d := startDaemon(t, "sync", "-r", dst.Host, slow.Host+"/big")
	deadline := time.Now().Add(30 * time.Second)
	for registrytest.Count(dst.Requests()).Posts == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no upload started; stderr:\n%s", d.errors())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.stop(t, syscall.SIGINT, 130)
	if !strings.HasSuffix(d.errors(), "roots: interrupted\n") {
		t.Errorf("stderr %q: want it to end in roots: interrupted", d.errors())
	}
	if n := registrytest.Count(dst.Requests()); n.ManifestPuts != 0 {
		t.Errorf("target requests %+v: a manifest was written", n)
	}
}

// TestSyncFile: roots sync -f FILE with a roots: file and with an lstags: file (its REPO:TAG
// and push-registry/push-prefix keys, unchanged): both copy what the arguments would, into
// the prefix the file names; a flag given wins over the file; a file's interval does not
// make a single sync wait; a push-registry that is no host is a usage error naming the file.
func TestSyncFile(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	src.Push(t, "app/one", "1", syncImage("one"))
	src.Push(t, "app/one", "2", syncImage("one-2"))
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, file string
		args       []string
		target     string // the repository the tags go to, in the target registry
	}{
		{"roots", "roots:\n  repositories:\n    - %[1]s/app/one=1,2\n  push-registry: %[2]s\n  push-prefix: /mirror\n  interval: 1h\n", nil, "mirror/app/one"},
		{"lstags", "lstags:\n  repositories:\n    - %[1]s/app/one:1\n    - %[1]s/app/one=2\n  push-registry: %[2]s\n  push-prefix: /quay/\n", nil, "quay/app/one"},
		{"flag-wins", "roots:\n  repositories:\n    - %[1]s/app/one=1,2\n  push-registry: %[2]s\n  push-prefix: /mirror\n", []string{"--push-prefix", "/"}, "app/one"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := registrytest.Start(t, registrytest.Config{})
			file := write(tt.name+".yaml", fmt.Sprintf(tt.file, src.Host, dst.Host))
			res := RootsLimit(t, 30*time.Second, nil, append([]string{"sync", "-f", file}, tt.args...)...)
			if res.Code != 0 || strings.Count(res.Stdout, "COPIED") != 2 {
				t.Fatalf("sync -f %s: exit %d\n%s%s", tt.name, res.Code, res.Stdout, res.Stderr)
			}
			for _, tag := range []string{"1", "2"} {
				want := "→ " + dst.Host + "/" + tt.target + ":" + tag
				if !strings.Contains(res.Stdout, want) {
					t.Errorf("sync -f %s: no %q in\n%s", tt.name, want, res.Stdout)
				}
			}
		})
	}
	bad := write("bad.yaml", "roots:\n  repositories:\n    - "+src.Host+"/app/one=1\n  push-registry: not a host/x\n")
	res := Roots(t, nil, "sync", "-f", bad)
	if res.Code != 2 || !strings.Contains(res.Stderr, "bad.yaml:4: push-registry") || strings.Count(res.Stderr, "\n") != 1 {
		t.Errorf("a bad push-registry in the file: exit %d, stderr %q; want 2 and one line naming bad.yaml:4", res.Code, res.Stderr)
	}
}
