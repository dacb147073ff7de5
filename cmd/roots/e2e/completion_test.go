package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletion: the scripts roots completion prints load in bash, zsh and fish, and complete
// commands, flag values and arguments from the command line's own model.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if _, err := exec.LookPath(sh); err != nil {
			t.Fatalf("%s is needed to load its completion script: apt-get install %s (as .ci/run does)", sh, sh)
		}
	}
	dir := t.TempDir()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		res := Roots(t, nil, "completion", sh)
		if res.Code != 0 {
			t.Fatalf("roots completion %s: exit %d: %s", sh, res.Code, res.Stderr)
		}
		if err := os.WriteFile(filepath.Join(dir, sh), []byte(res.Stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bash := `source "$1"; complete -p roots
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _roots; echo "${COMPREPLY[*]}"; }
complete_words roots pu
complete_words roots pull --mode ''
complete_words roots completion ''
complete_words roots tags --j`
	tests := []struct {
		shell string
		args  []string
		want  string
	}{
		{"bash", []string{"-c", bash, "bash", filepath.Join(dir, "bash")},
			"complete -o filenames -F _roots roots\npull push purge\nhardlink copy overlay\nbash zsh fish\n--json --jobs\n"},
		{"zsh", []string{"-fc", `autoload -U compinit && compinit -u -d "$2"; source "$1"; print -r -- ${_comps[roots]}`, "zsh", filepath.Join(dir, "zsh"), filepath.Join(dir, "zcompdump")},
			"_bash_complete -o filenames -F _roots\n"},
		{"fish", []string{"-c", `source $argv[1]; complete -C "roots pu" | cut -f1; complete -C "roots pull --mode " | cut -f1`, filepath.Join(dir, "fish")},
			"pull\npurge\npush\ncopy\nhardlink\noverlay\n"},
	}
	for _, tt := range tests {
		cmd := exec.Command(tt.shell, tt.args...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != tt.want {
			t.Errorf("%s: %v\n%s\nwant:\n%s", tt.shell, err, out, tt.want)
		}
	}
}

// TestManPage: roots man (make man) is a page man(1) renders, with every command.
func TestManPage(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		t.Fatal("man is needed to render the page: apt-get install man-db (as .ci/run does)")
	}
	res := Roots(t, nil, "man")
	if res.Code != 0 {
		t.Fatalf("roots man: exit %d: %s", res.Code, res.Stderr)
	}
	page := filepath.Join(t.TempDir(), "roots.1")
	if err := os.WriteFile(page, []byte(res.Stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("man", "--warnings", "-l", page)
	cmd.Env = append(os.Environ(), "MANWIDTH=100", "MANPAGER=cat", "PAGER=cat")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("man -l: %v", err)
	}
	text := strings.Join(strings.Fields(string(out)), " ") // lines are filled and justified
	for _, want := range []string{"ROOTS(1)", "NAME", "roots - pull registry images", "roots pull <image> <dest>", "roots commit", "--cache DIR|no", "ROOTS_CACHE", "EXIT STATUS", "130"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if strings.Contains(text, `\-`) || strings.Contains(text, `\f`) {
		t.Errorf("the rendered page shows roff escapes:\n%s", text)
	}
}
