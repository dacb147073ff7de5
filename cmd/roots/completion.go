package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// CompletionCmd prints a shell's completion script, generated from the command line itself.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

// Help shows how to load the scripts.
func (CompletionCmd) Help() string {
	return `Prints a script that completes roots' commands, flags and flag values.

  bash:  source <(roots completion bash)     (or write it to /etc/bash_completion.d/roots)
  zsh:   source <(roots completion zsh)      (or write it as _roots into a directory of $fpath)
  fish:  roots completion fish | source      (or write it to ~/.config/fish/completions/roots.fish)`
}

// Run prints the script.
func (c *CompletionCmd) Run(k *kong.Context, e *env) error {
	cmds := completionModel(k.Model.Node)
	switch c.Shell {
	case "bash":
		return writeBash(e.stdout, cmds)
	case "zsh":
		// zsh runs bash's completion functions through bashcompinit.
		fmt.Fprintln(e.stdout, "#compdef roots\nautoload -U +X bashcompinit && bashcompinit")
		return writeBash(e.stdout, cmds)
	default:
		return writeFish(e.stdout, cmds)
	}
}

// completed is what a script completes of one command ("" is roots itself).
type completed struct {
	name  string
	help  string
	flags []completedFlag
	args  bool     // takes arguments (paths, images: completed as paths)
	words []string // its first argument's values, if they are few
}

type completedFlag struct {
	long  string
	short rune
	help  string
	value bool     // takes a value
	enum  []string // its values, if they are few
	file  bool     // its value is a path
}

// completionModel lists roots and its visible commands with their visible flags.
func completionModel(app *kong.Node) []completed {
	out := []completed{nodeCompletion("", app)}
	for _, n := range app.Children {
		if n.Type == kong.CommandNode && !n.Hidden {
			out = append(out, nodeCompletion(n.Name, n))
		}
	}
	return out
}

func nodeCompletion(name string, n *kong.Node) completed {
	c := completed{name: name, help: n.Help, args: len(n.Positional) > 0}
	if c.args && n.Positional[0].Enum != "" {
		c.words = n.Positional[0].EnumSlice()
	}
	for _, group := range n.AllFlags(true) {
		for _, f := range group {
			if name != "" && f.Name == "version" { // roots --version, not roots pull --version
				continue
			}
			cf := completedFlag{long: f.Name, short: f.Short, help: firstSentence(f.Help), value: !f.IsBool()}
			if f.Enum != "" {
				cf.enum = f.EnumSlice()
			}
			ph := strings.ToUpper(f.PlaceHolder)
			cf.file = cf.value && cf.enum == nil && (strings.Contains(ph, "FILE") || strings.Contains(ph, "DIR") || f.Tag.Type == "existingfile" || f.Tag.Type == "path")
			c.flags = append(c.flags, cf)
		}
	}
	return c
}

// firstSentence is the first sentence of a help text, for the shells that show one.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(strings.TrimSpace(s), ".")
}

// writeBash writes a bash completion function: the command is the first word that is no flag;
// a flag that takes a value completes its enum, or a path; otherwise flags after "-", paths else.
func writeBash(w io.Writer, cmds []completed) error {
	var b strings.Builder
	b.WriteString("# roots completion for bash (roots completion bash)\n_roots() {\n")
	b.WriteString("\tlocal cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\" cmd= i\n")
	b.WriteString("\tfor ((i = 1; i < COMP_CWORD; i++)); do\n\t\tcase \"${COMP_WORDS[i]}\" in -*) ;; *) cmd=\"${COMP_WORDS[i]}\"; break ;; esac\n\tdone\n")
	b.WriteString("\tcase \"$cmd\" in\n")
	var names []string
	for _, c := range cmds[1:] {
		names = append(names, c.name)
	}
	for _, c := range cmds {
		pattern := c.name
		if c.name == "" {
			pattern = "''"
		}
		var flags []string
		fmt.Fprintf(&b, "\t%s)\n\t\tcase \"$prev\" in\n", pattern)
		for _, f := range c.flags {
			flags = append(flags, "--"+f.long)
			if f.short != 0 {
				flags = append(flags, "-"+string(f.short))
			}
			if !f.value {
				continue
			}
			words := "--" + f.long
			if f.short != 0 {
				words += "|-" + string(f.short)
			}
			switch {
			case f.enum != nil:
				fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -W '%s' -- \"$cur\")); return ;;\n", words, strings.Join(f.enum, " "))
			case f.file:
				fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", words)
			default:
				fmt.Fprintf(&b, "\t\t%s) return ;;\n", words)
			}
		}
		b.WriteString("\t\tesac\n")
		if c.name == "" {
			fmt.Fprintf(&b, "\t\tCOMPREPLY=($(compgen -W '%s %s' -- \"$cur\")) ;;\n", strings.Join(names, " "), strings.Join(flags, " "))
			continue
		}
		other := "COMPREPLY=($(compgen -f -- \"$cur\"))"
		switch {
		case c.words != nil:
			other = fmt.Sprintf("COMPREPLY=($(compgen -W '%s' -- \"$cur\"))", strings.Join(c.words, " "))
		case !c.args:
			other = "COMPREPLY=()"
		}
		fmt.Fprintf(&b, "\t\tif [[ $cur == -* ]]; then COMPREPLY=($(compgen -W '%s' -- \"$cur\")); else %s; fi ;;\n", strings.Join(flags, " "), other)
	}
	b.WriteString("\tesac\n}\ncomplete -o filenames -F _roots roots\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFish writes fish's complete commands: the commands while none is given, then each
// command's flags with their help and values.
func writeFish(w io.Writer, cmds []completed) error {
	var b strings.Builder
	b.WriteString("# roots completion for fish (roots completion fish)\ncomplete -c roots -f\n")
	var names []string
	for _, c := range cmds[1:] {
		names = append(names, c.name)
		fmt.Fprintf(&b, "complete -c roots -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(firstSentence(c.help)))
	}
	for _, c := range cmds {
		cond := "__fish_use_subcommand"
		if c.name != "" {
			cond = "__fish_seen_subcommand_from " + c.name
		}
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c roots -n %s -l %s", fishQuote(cond), f.long)
			if f.short != 0 {
				line += " -s " + string(f.short)
			}
			switch {
			case f.enum != nil:
				line += " -x -a " + fishQuote(strings.Join(f.enum, " "))
			case f.file:
				line += " -r -F"
			case f.value:
				line += " -x"
			}
			b.WriteString(line + " -d " + fishQuote(f.help) + "\n")
		}
		switch cond := fishQuote("__fish_seen_subcommand_from " + c.name); {
		case c.name == "" || !c.args:
		case c.words != nil:
			fmt.Fprintf(&b, "complete -c roots -n %s -a %s\n", cond, fishQuote(strings.Join(c.words, " ")))
		default:
			fmt.Fprintf(&b, "complete -c roots -n %s -F\n", cond)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fishQuote quotes s for fish: single quotes, with \ and ' escaped.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
