package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// ManCmd prints roots(1), generated from the command line itself (make man).
type ManCmd struct{}

// Run prints the page.
func (ManCmd) Run(k *kong.Context, e *env) error {
	return writeMan(e.stdout, k.Model.Node, time.Now())
}

// writeMan writes the manual page of app in roff (man(7) macros): every visible command with
// its arguments, its long help and its flags, the environment the flags read, and the exit
// statuses.
func writeMan(w io.Writer, app *kong.Node, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH ROOTS 1 %q %q \"User Commands\"\n", now.Format("2006-01-02"), "roots "+version)
	b.WriteString(".SH NAME\nroots \\- " + roff(lowerFirst(strings.TrimSuffix(app.Help, "."))) + "\n")
	b.WriteString(".SH SYNOPSIS\n.B roots\n.I command\n[\\fIflags\\fR] [\\fIarguments\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n" + roff(app.Help) + "\nEvery command prints its own help with \\fBroots \\fIcommand\\fB \\-\\-help\\fR.\n")
	envs := map[string]string{}
	var envOrder []string
	b.WriteString(".SH COMMANDS\n")
	for _, n := range app.Children {
		if n.Type != kong.CommandNode || n.Hidden {
			continue
		}
		synopsis := "roots " + n.Name
		for _, p := range n.Positional {
			synopsis += " " + p.Summary()
		}
		b.WriteString(".SS " + roff(synopsis) + "\n" + roff(n.Help) + "\n")
		if n.Detail != "" {
			b.WriteString(".PP\n.nf\n" + roff(n.Detail) + "\n.fi\n")
		}
		for _, group := range n.AllFlags(true) {
			for _, f := range group {
				if f.Name == "help" || f.Name == "version" {
					continue
				}
				head := "\\fB\\-\\-" + roff(f.Name) + "\\fR"
				if f.Short != 0 {
					head = "\\fB\\-" + string(f.Short) + "\\fR, " + head
				}
				if !f.IsBool() {
					head += " \\fI" + roff(f.FormatPlaceHolder()) + "\\fR"
				}
				b.WriteString(".TP\n" + head + "\n" + roff(f.Help) + "\n")
				for _, name := range f.Envs {
					if _, ok := envs[name]; !ok {
						envs[name] = "\\fB\\-\\-" + roff(f.Name) + "\\fR"
						envOrder = append(envOrder, name)
					}
				}
			}
		}
	}
	if len(envOrder) > 0 {
		b.WriteString(".SH ENVIRONMENT\n")
		for _, name := range envOrder {
			b.WriteString(".TP\n.B " + name + "\nThe default of " + envs[name] + ".\n")
		}
	}
	b.WriteString(".SH EXIT STATUS\n.TP\n0\nSuccess.\n.TP\n1\nThe command failed; one line on standard error says why.\n" +
		".TP\n2\nA mistake in the command line.\n.TP\n130\nInterrupted (SIGINT or SIGTERM); what the command had begun is taken back.\n")
	b.WriteString(".SH SEE ALSO\n.BR runc (8),\n.BR systemd-nspawn (1),\n.BR chroot (8),\n.BR skopeo (1),\n.BR umoci (1)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// roff escapes text for roff: backslashes, and a leading dot or quote that would start a
// request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// lowerFirst lowers a sentence's first letter, for NAME's one-line description.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
