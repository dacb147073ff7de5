package fetch

import (
	"net/http"
)

// offlineTransport is the base transport of a Client made with Options.Offline: it refuses
// every request before anything is dialled or looked up, so that a code path that would
// reach a registry fails loudly, naming what it wanted, instead of connecting.
type offlineTransport struct{}

func (offlineTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, errorf(ErrOffline, "%s %s%s: offline, no connection is opened", req.Method, req.URL.Host, req.URL.Path)
}
