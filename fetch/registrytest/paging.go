package registrytest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Paging says how a PagingFront pages tag lists.
type Paging struct {
	// Size caps a page (default 50), whatever n the client asks for, as Docker Hub and Quay do.
	Size int
	// Absolute sends the next page's Link as an absolute URL (Quay); else a path (Docker Hub,
	// Distribution).
	Absolute bool
}

// PagingFront starts a loopback front (same scheme and CA as r) that forwards to r's registry
// but answers GET /v2/<name>/tags/list in pages of at most p.Size tags, sorted, each but the last with `Link: <...?n=N&last=TAG>; rel="next"`. Its requests are not
// in r.Requests().
func (r *Registry) PagingFront(t testing.TB, p Paging) *Front {
	t.Helper()
	if p.Size <= 0 {
		p.Size = 50
	}
	proxy := newProxy(r.backend, r.toBackend, r.errLog)
	fnt := startFront(t, r.serverCert, &pager{next: proxy, p: p}, r.errLog)
	fnt.next.(*pager).base = fnt.url
	return &Front{Host: fnt.host, URL: fnt.url, f: fnt}
}

// pager is the handler of a PagingFront.
type pager struct {
	next http.Handler
	p    Paging
	base string // the front's URL, for absolute links
}

func (h *pager) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet || !strings.HasPrefix(req.URL.Path, "/v2/") || !strings.HasSuffix(req.URL.Path, "/tags/list") {
		h.next.ServeHTTP(w, req)
		return
	}
	q := req.URL.Query()
	whole := req.Clone(req.Context())
	whole.URL.RawQuery = ""
	whole.RequestURI = ""
	rec := httptest.NewRecorder()
	h.next.ServeHTTP(rec, whole)
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	sort.Strings(list.Tags) // Distribution 2.8 lists in storage order; pages need one order
	n := h.p.Size
	if asked, err := strconv.Atoi(q.Get("n")); err == nil && asked > 0 && asked < n {
		n = asked
	}
	start := 0
	if last := q.Get("last"); last != "" {
		for start < len(list.Tags) && list.Tags[start] <= last {
			start++
		}
	}
	end := min(start+n, len(list.Tags))
	page := list.Tags[start:end]
	if end < len(list.Tags) {
		link := req.URL.Path + "?" + url.Values{"n": {strconv.Itoa(n)}, "last": {page[len(page)-1]}}.Encode()
		if h.p.Absolute {
			link = h.base + link
		}
		w.Header().Set("Link", "<"+link+`>; rel="next"`)
	}
	list.Tags = page
	body, _ := json.Marshal(list)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// Delete deletes the manifest d from repo, and with it every tag that points at it, talking to
// the registry directly (not in Requests()). It fails the test unless the registry accepts.
func (r *Registry) Delete(t testing.TB, repo string, d digest.Digest) {
	t.Helper()
	resp, msg := r.adminDo(t, repo, http.MethodDelete, r.backendURL("/v2/"+repo+"/manifests/"+d.String()), "", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("registrytest: delete %s@%s: %s: %s", repo, d, resp.Status, msg)
	}
}
