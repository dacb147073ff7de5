package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// tagsPageSize is the page size asked for; a registry may send fewer (Docker Hub and Quay
// cap pages) and says where the rest is with a Link header.
const tagsPageSize = 1000

// maxTagsPage bounds one page's body: 1000 tags of 128 bytes and their quotes.
const maxTagsPage int64 = 4 << 20

// ListTags lists every tag of repo's repository (repo's Tag and Digest are ignored), in the
// registry's order: GET /v2/<name>/tags/list?n=1000, then every `Link: <...>; rel="next"`
// (relative or absolute, resolved against the request's URL) to the end. Each page gets the
// client's retries and deadlines; a page URL seen twice is an error, not a loop.
func (c *Client) ListTags(ctx context.Context, repo Reference) ([]string, error) {
	repo.Tag, repo.Digest = "latest", ""
	if err := repo.check(); err != nil {
		return nil, err
	}
	what := "list tags of " + repo.Name()
	next := "https://" + repo.APIHost() + "/v2/" + repo.Path + "/tags/list?n=" + fmt.Sprint(tagsPageSize)
	seen := map[string]bool{}
	tags := []string{}
	for next != "" {
		if seen[next] {
			return nil, fmt.Errorf("%s: the registry links back to page %s: giving up", what, next)
		}
		seen[next] = true
		page, link, err := c.tagsPage(ctx, repo, next)
		if errors.Is(err, ErrNotFound) {
			return nil, err // "repository unknown: NAME not found" says it all
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		tags = append(tags, page...)
		next = link
	}
	return tags, nil
}

// tagsPage GETs one page of a tag list and returns its tags and the absolute URL of the
// next page ("" at the end).
func (c *Client) tagsPage(ctx context.Context, repo Reference, target string) ([]string, string, error) {
	resp, err := c.do(ctx, repo, http.MethodGet, target, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound {
			return nil, "", fmt.Errorf("repository unknown: %s %w", repo.Name(), ErrNotFound)
		}
		return nil, "", responseError(resp, "repository "+repo.Name())
	}
	body, err := readAllLimited(resp.Body, resp.ContentLength, maxTagsPage)
	if err != nil {
		return nil, "", err
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, "", fmt.Errorf("tag list is not valid JSON: %w", err)
	}
	base, err := url.Parse(target)
	if err != nil {
		return nil, "", err
	}
	next, err := nextLink(base, resp.Header.Values("Link"))
	if err != nil {
		return nil, "", err
	}
	return list.Tags, next, nil
}

// nextLink finds the rel="next" target among Link header values (RFC 8288) and resolves it
// against base. Only the same host is followed: a link elsewhere would take the
// repository's credentials with it.
func nextLink(base *url.URL, values []string) (string, error) {
	for _, v := range values {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") || !relNext(params) {
				continue
			}
			u, err := base.Parse(strings.Trim(target, "<>"))
			if err != nil {
				return "", fmt.Errorf("bad Link %q: %w", target, err)
			}
			if u.Host != base.Host {
				return "", fmt.Errorf("Link %q leads to another host", target)
			}
			u.Scheme = base.Scheme // the scheme transport picks http for loopback
			return u.String(), nil
		}
	}
	return "", nil
}

// relNext reports whether a link's parameters hold rel="next" (quoted or not).
func relNext(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "rel") {
			for _, r := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
				if strings.EqualFold(r, "next") {
					return true
				}
			}
		}
	}
	return false
}
