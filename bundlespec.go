package roots

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rootsdev/roots/fetch"
)

// bundleOCIVersion is the runtime-spec version a bundle's config.json states: the one runc 1.1's
// `runc spec` writes (Debian 12's runc 1.1.5), which every runc since accepts. The Go types are
// those of a later runtime-spec; every field roots sets is in 1.0.
const bundleOCIVersion = "1.0.2-dev"

// defaultPath is PATH when the image sets none (Docker's and runc spec's).
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// StopSignalAnnotation is the annotation of a bundle that carries the image's StopSignal, as the
// image-spec's conversion to a runtime config names it.
const StopSignalAnnotation = "org.opencontainers.image.stopSignal"

// defaultSpec is what runc 1.1's `runc spec` writes, but for the process, which the image fills.
func defaultSpec() *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: bundleOCIVersion,
		Process: &specs.Process{
			Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps, Ambient: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "runc",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// makeRootless changes s as runc 1.1's `runc spec --rootless` does (specconv.ToRootless): no
// network namespace but a user namespace that maps the caller's uid and gid (hostUID, hostGID)
// to root, no cgroup device rules, /sys bound from the host (sysfs cannot be mounted without a
// network namespace of one's own), devpts without gid=5. An unprivileged caller has no other id
// to map, and runc 1.1 refuses a user namespace without root mapped: the process runs as root
// in the namespace (the caller outside), whatever user the image names, with no supplementary
// groups (setgroups is denied in such a namespace).
func makeRootless(s *specs.Spec, hostUID, hostGID uint32) {
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace && n.Type != specs.UserNamespace {
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Process.User = specs.User{}
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: hostUID, Size: 1}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: hostGID, Size: 1}}
	s.Linux.Resources = nil
	for i, m := range s.Mounts {
		switch m.Destination {
		case "/sys":
			s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
		case "/dev/pts":
			var opts []string
			for _, o := range m.Options {
				if !strings.HasPrefix(o, "gid=") {
					opts = append(opts, o)
				}
			}
			s.Mounts[i].Options = opts
		}
	}
}

// processArgs is what a container of an image with config c runs: Entrypoint + Cmd, or
// Entrypoint + args when args are given (they replace Cmd, as with docker run).
func processArgs(c ocispec.ImageConfig, args []string) []string {
	cmd := c.Cmd
	if len(args) > 0 {
		cmd = args
	}
	return append(append([]string(nil), c.Entrypoint...), cmd...)
}

// processEnv is the image's Env, with the default PATH when it sets none, HOME from the user's
// passwd entry when it sets none (as Docker), and TERM=xterm on a terminal when it sets none
// (as runc spec).
func processEnv(c ocispec.ImageConfig, home string, terminal bool) []string {
	env := append([]string(nil), c.Env...)
	has := func(name string) bool {
		for _, e := range env {
			if k, _, _ := strings.Cut(e, "="); k == name {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		env = append(env, defaultPath)
	}
	if !has("HOME") {
		env = append(env, "HOME="+home)
	}
	if terminal && !has("TERM") {
		env = append(env, "TERM=xterm")
	}
	return env
}

// processCwd is the image's WorkingDir, or "/".
func processCwd(c ocispec.ImageConfig) string {
	if c.WorkingDir == "" {
		return "/"
	}
	return c.WorkingDir
}

// bundleAnnotations are the image's labels, each under its own key, and its StopSignal under
// StopSignalAnnotation.
func bundleAnnotations(c ocispec.ImageConfig) map[string]string {
	if len(c.Labels) == 0 && c.StopSignal == "" {
		return nil
	}
	a := make(map[string]string, len(c.Labels)+1)
	for k, v := range c.Labels {
		a[k] = v
	}
	if c.StopSignal != "" {
		a[StopSignalAnnotation] = c.StopSignal
	}
	return a
}

// bundleHostname is the container's hostname: the last part of the image's repository
// ("debian" for docker.io/library/debian:12), made a valid host name (RFC 1123 label: letters,
// digits and inner hyphens, at most 63), or "runc" (runc spec's) when nothing is left.
func bundleHostname(r fetch.Reference) string {
	name := r.Path[strings.LastIndexByte(r.Path, '/')+1:]
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0:
			b.WriteByte('-')
		}
	}
	h := b.String()
	if len(h) > 63 {
		h = h[:63]
	}
	h = strings.TrimRight(h, "-")
	if h == "" {
		return "runc"
	}
	return h
}

// imageSpec is the part of a bundle's spec that the image config alone decides: everything but
// the user, which needs the rootfs.
type imageSpec struct {
	config ocispec.ImageConfig
	args   []string
}

// newImageSpec reads the image config (raw, as the registry served it) and the process's args;
// an image with neither Entrypoint nor Cmd, and no args given, is ErrNoCommand.
func newImageSpec(ref fetch.Reference, raw []byte, args []string) (*imageSpec, error) {
	var img ocispec.Image
	if err := json.Unmarshal(raw, &img); err != nil {
		return nil, fmt.Errorf("image config of %s: %w", ref, err)
	}
	s := &imageSpec{config: img.Config, args: processArgs(img.Config, args)}
	if len(s.args) == 0 {
		return nil, kindErrorf(ErrNoCommand, "%s sets neither Entrypoint nor Cmd, and no command was given", ref)
	}
	return s, nil
}

// spec is the bundle's whole spec, for the process running as u.
func (is *imageSpec) spec(ref fetch.Reference, u execUser, opts BundleOptions) *specs.Spec {
	s := defaultSpec()
	s.Hostname = bundleHostname(ref)
	s.Annotations = bundleAnnotations(is.config)
	p := s.Process
	p.Terminal = opts.Terminal
	p.Args = is.args
	p.Env = processEnv(is.config, u.Home, opts.Terminal)
	p.Cwd = processCwd(is.config)
	p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.Groups}
	if opts.Rootless {
		makeRootless(s, uint32(os.Geteuid()), uint32(os.Getegid()))
	}
	return s
}
