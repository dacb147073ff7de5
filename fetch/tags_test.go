package fetch

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// pushTags tags one small image n times in repo: "t000" to "t<n-1>".
func pushTags(t *testing.T, r *registrytest.Registry, repo string, n int) []string {
	t.Helper()
	p := r.Push(t, repo, "t000", hostImage(registrytest.OCI))
	tags := []string{"t000"}
	for i := 1; i < n; i++ {
		tag := fmt.Sprintf("t%03d", i)
		r.PushRaw(t, repo, tag, p.MediaType, p.Manifest)
		tags = append(tags, tag)
	}
	return tags
}

// TestListTagsPages: 120 tags behind a front that caps pages at 50 come back complete, in
// three pages, whether the Link is a path or an absolute URL, and equal skopeo's list.
func TestListTagsPages(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	want := pushTags(t, r, "many/tags", 120)
	for _, absolute := range []bool{false, true} {
		t.Run(fmt.Sprintf("Absolute=%v", absolute), func(t *testing.T) {
			fnt := r.PagingFront(t, registrytest.Paging{Size: 50, Absolute: absolute})
			c := New(Options{Transport: r.Transport, Keychain: auth.Static(auth.Credential{Username: r.User, Password: r.Password})})
			got, err := c.ListTags(t.Context(), mustRef(t, fnt.Host+"/many/tags"))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%d tags, want %d: %v", len(got), len(want), got)
			}
			var pages []string
			for _, q := range fnt.Requests() {
				if q.Status == http.StatusOK && strings.HasSuffix(q.Path, "/tags/list") {
					pages = append(pages, q.Query)
				}
			}
			if len(pages) != 3 || pages[0] != "n=1000" {
				t.Fatalf("pages asked: %q, want n=1000 then two Link pages", pages)
			}
			if skopeo := skopeoTags(t, fnt.Host+"/many/tags", r); !slices.Equal(skopeo, got) {
				t.Errorf("skopeo list-tags gives %d tags, roots %d", len(skopeo), len(got))
			}
		})
	}
}

// skopeoTags is `skopeo list-tags` of ref on the test registry.
func skopeoTags(t *testing.T, ref string, r *registrytest.Registry) []string {
	t.Helper()
	args := []string{"list-tags", "--tls-verify=false"}
	if r.User != "" {
		args = append(args, "--creds", r.User+":"+r.Password)
	}
	out, err := exec.CommandContext(t.Context(), "skopeo", append(args, "docker://"+ref)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("skopeo: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("skopeo: %v", err)
	}
	var list struct{ Tags []string }
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("skopeo output: %v", err)
	}
	return list.Tags
}

// TestListTagsMissingRepository: a repository the registry does not know is ErrNotFound.
func TestListTagsMissingRepository(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	_, err := newTestClient(t, r, nil).ListTags(t.Context(), mustRef(t, r.Host+"/no/such"))
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no/such") {
		t.Fatalf("err = %v, want ErrNotFound naming the repository", err)
	}
}

// TestListTagsLinkLoop: a front whose next page is the page itself (which no real registry
// sends) ends the listing with an error instead of looping.
func TestListTagsLinkLoop(t *testing.T) {
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("Link", `</v2/loop/tags/list?n=1000>; rel="next"`)
		w.Write([]byte(`{"name":"loop","tags":["a"]}`))
	}))
	t.Cleanup(front.Close)
	u, _ := url.Parse(front.URL)
	_, err := New(Options{}).ListTags(t.Context(), mustRef(t, u.Host+"/loop"))
	if err == nil || !strings.Contains(err.Error(), "links back") {
		t.Fatalf("err = %v, want the loop named", err)
	}
}

func TestNextLink(t *testing.T) {
	base, _ := url.Parse("https://h:5000/v2/r/tags/list?n=1000")
	tests := []struct {
		values []string
		want   string
		err    bool
	}{
		{nil, "", false},
		{[]string{`</v2/r/tags/list?n=50&last=b>; rel="next"`}, "https://h:5000/v2/r/tags/list?n=50&last=b", false},
		{[]string{`<http://h:5000/v2/r/tags/list?last=b>; rel=next`}, "https://h:5000/v2/r/tags/list?last=b", false},
		{[]string{`</first>; rel="first", </v2/r/tags/list?last=c>; rel="next"`}, "https://h:5000/v2/r/tags/list?last=c", false},
		{[]string{`</prev>; rel="prev"`}, "", false},
		{[]string{`<https://evil.example/v2/r/tags/list>; rel="next"`}, "", true},
	}
	for _, tt := range tests {
		got, err := nextLink(base, tt.values)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("nextLink(%q) = %q, %v; want %q (error %v)", tt.values, got, err, tt.want, tt.err)
		}
	}
}
