package assemble

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	caslayer "github.com/rootsdev/roots/cas/layer"
)

// OverlayChangesSince returns the changes of the overlay destination dest (mounted over upper)
// since it was last committed, sorted as cas/layer.Export writes them. lowers are the overlay
// layers of the image it was committed as (top first: the committed layers' trees, then the
// pulled image's fix-up and trees), and committed the trees of the layers committed since the
// upper was empty.
//
// Only the paths that upper or a committed tree holds can differ between dest and that image:
// any other path of dest shows the pulled image's entry, and so does the committed image. So
// neither tree is walked: dest is compared, as Changes compares, with a read-only overlay of
// lowers (detached, seen by this process only) at those paths and in the directories above
// them. It needs root (a mount).
func OverlayChangesSince(ctx context.Context, dest, upper string, lowers, committed []string) ([]caslayer.Change, error) {
	only := map[string]bool{".": true}
	for _, dir := range append([]string{upper}, committed...) {
		changes, err := OverlayChanges(ctx, dir)
		if err != nil {
			return nil, err
		}
		for _, c := range changes {
			for p := c.Path; !only[p]; p = parentPath(p) {
				only[p] = true
			}
		}
	}
	lowers = uniqueLowers(lowers)
	if len(lowers) < 2 {
		return nil, fmt.Errorf("changes of %s: %d overlay layers, want the committed ones and the image's", dest, len(lowers))
	}
	view, release, err := ovlView(upper, lowers)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: view of its last commit: %w", dest, err)
	}
	defer release()
	// The view's descriptor may be O_PATH (a detached mount): Changes opens it again by name.
	return Changes(ctx, dest, "/proc/self/fd/"+strconv.Itoa(view), ChangeOptions{Only: only})
}

// parentPath is the directory above the change path p ("." above a top-level name).
func parentPath(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}
