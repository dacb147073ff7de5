package cas

import "github.com/rootsdev/roots/assemble/mountinfo"

// overlayMounts returns the mount points of this mount namespace's overlay
// mounts.
func overlayMounts() (map[string]bool, error) {
	all, err := mountinfo.Read()
	if err != nil {
		return nil, err
	}
	mounts := map[string]bool{}
	for _, m := range all {
		if m.FSType == "overlay" {
			mounts[m.Point] = true
		}
	}
	return mounts, nil
}
