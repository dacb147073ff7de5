package roots

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/rootsdev/roots/internal/disk"
)

// The user a bundle's process runs as comes from the image config's User, resolved as Docker
// (moby/sys/user GetExecUser) resolves it, in the rootfs's own /etc/passwd and /etc/group:
//
//	""            root: uid 0, gid 0
//	uid           that uid; its gid and home from passwd when it has the uid, else gid 0
//	name          the passwd entry of that name (an unknown name is ErrUnknownUser)
//	x:group, x:gid the user x as above, with the group of that name (ErrUnknownUser if
//	              unknown) or that gid as its primary group
//
// Only in the forms without a group does the user get the supplementary groups that list its
// name in /etc/group (Docker: "supplementary group ids only make sense in the implicit form").

// execUser is who a bundle's process runs as.
type execUser struct {
	UID, GID uint32
	Groups   []uint32 // supplementary, from /etc/group membership
	Home     string   // from passwd; "/" when the user has no entry
}

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	Name     string
	UID, GID uint32
	Home     string
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	Name    string
	GID     uint32
	Members []string
}

// maxUserDB bounds what is read of a rootfs's /etc/passwd or /etc/group.
const maxUserDB = 16 << 20

// readUserDB reads the rootfs's /etc/passwd and /etc/group, confined to rootfs (see
// disk.ReadInRoot). A file that does not exist reads as empty.
func readUserDB(rootfs string) (passwd, group []byte, err error) {
	read := func(name string) ([]byte, error) {
		b, err := disk.ReadInRoot(rootfs, name, maxUserDB)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the image's /%s: %w", name, err)
		}
		return b, nil
	}
	if passwd, err = read("etc/passwd"); err != nil {
		return nil, nil, err
	}
	if group, err = read("etc/group"); err != nil {
		return nil, nil, err
	}
	return passwd, group, nil
}

// resolveUser resolves spec (the image's User) against the contents of passwd and group.
func resolveUser(spec string, passwd, group []byte) (execUser, error) {
	userArg, groupArg, explicit := strings.Cut(spec, ":")
	if explicit && groupArg == "" {
		return execUser{}, fmt.Errorf("user %q: an empty group after the colon", spec)
	}
	if userArg == "" {
		if explicit {
			return execUser{}, fmt.Errorf("user %q: no user before the colon", spec)
		}
		userArg = "0"
	}
	users := parsePasswd(passwd)
	u := execUser{Home: "/"}
	matched := ""
	if id, err := parseID(userArg); err == nil {
		u.UID = id
		for _, p := range users {
			if p.UID == id {
				u.GID, u.Home, matched = p.GID, p.Home, p.Name
				break
			}
		}
	} else {
		found := false
		for _, p := range users {
			if p.Name == userArg {
				u.UID, u.GID, u.Home, matched, found = p.UID, p.GID, p.Home, p.Name, true
				break
			}
		}
		if !found {
			return execUser{}, kindErrorf(ErrUnknownUser, "user %q: no user %q in the image's /etc/passwd", spec, userArg)
		}
	}
	groups := parseGroup(group)
	if explicit {
		if id, err := parseID(groupArg); err == nil {
			u.GID = id
			return u, nil
		}
		for _, g := range groups {
			if g.Name == groupArg {
				u.GID = g.GID
				return u, nil
			}
		}
		return execUser{}, kindErrorf(ErrUnknownUser, "user %q: no group %q in the image's /etc/group", spec, groupArg)
	}
	if matched == "" {
		return u, nil
	}
	seen := map[uint32]bool{}
	for _, g := range groups {
		for _, m := range g.Members {
			if m == matched && !seen[g.GID] {
				seen[g.GID] = true
				u.Groups = append(u.Groups, g.GID)
			}
		}
	}
	return u, nil
}

// parseID parses a numeric uid or gid (decimal, 0 to 2³²-2: 2³²-1 is "no id" to the kernel).
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, fmt.Errorf("%q is not a numeric id", s)
	}
	return uint32(n), nil
}

// parsePasswd parses passwd(5) lines; comments and lines without numeric ids are skipped.
func parsePasswd(b []byte) []passwdEntry {
	var out []passwdEntry
	for _, f := range dbLines(b) {
		if len(f) < 4 {
			continue
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		e := passwdEntry{Name: f[0], UID: uid, GID: gid, Home: "/"}
		if len(f) > 5 && f[5] != "" {
			e.Home = f[5]
		}
		out = append(out, e)
	}
	return out
}

// parseGroup parses group(5) lines; comments and lines without a numeric gid are skipped.
func parseGroup(b []byte) []groupEntry {
	var out []groupEntry
	for _, f := range dbLines(b) {
		if len(f) < 3 {
			continue
		}
		gid, err := parseID(f[2])
		if err != nil {
			continue
		}
		e := groupEntry{Name: f[0], GID: gid}
		if len(f) > 3 && f[3] != "" {
			e.Members = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	return out
}

// dbLines splits a colon-separated database into the fields of each line that is neither
// blank nor a comment.
func dbLines(b []byte) [][]string {
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
