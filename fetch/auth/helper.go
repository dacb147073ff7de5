package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// helperTokenUser is the Username a credential helper answers with when Secret
// is an identity token rather than a password.
const helperTokenUser = "<token>"

// runHelper runs "docker-credential-NAME get" with server on stdin, as docker
// does (see github.com/docker/docker-credential-helpers). An answer of
// "credentials not found" is the zero Credential and no error.
func runHelper(ctx context.Context, name, server string) (Credential, error) {
	prog := "docker-credential-" + name
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Stdin = strings.NewReader(server)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Credential{}, fmt.Errorf("%s get %s: %w", prog, server, ctx.Err())
		}
		if errors.Is(err, exec.ErrNotFound) {
			return Credential{}, fmt.Errorf("%s: not found on PATH: %w", prog, ErrCredentialHelper)
		}
		msg := strings.TrimSpace(stdout.String())
		if strings.Contains(strings.ToLower(msg), "credentials not found") {
			return Credential{}, nil
		}
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if msg == "" {
			msg = err.Error()
		}
		return Credential{}, fmt.Errorf("%s get %s: %s: %w", prog, server, firstLine(msg), ErrCredentialHelper)
	}
	var answer struct {
		ServerURL string
		Username  string
		Secret    string
	}
	if err := json.Unmarshal(stdout.Bytes(), &answer); err != nil {
		return Credential{}, fmt.Errorf("%s get %s: answer is not JSON: %w", prog, server, ErrCredentialHelper)
	}
	if answer.Username == helperTokenUser {
		return Credential{IdentityToken: answer.Secret}, nil
	}
	return Credential{Username: answer.Username, Password: answer.Secret}, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
