package assemble

// OvlMountLegacy lets overlay_test.go (package assemble_test) mount with mount(2) and short
// relative links, the path taken on kernels without fsconfig's "lowerdir+".
var OvlMountLegacy = ovlMountLegacy

// Followed reports whether Add finished what st linked rather than assembling its tree again.
func Followed(st *Stream) bool { return st.followed }
