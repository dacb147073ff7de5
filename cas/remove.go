package cas

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// removeAll removes path like os.RemoveAll, and also trees whose directories
// deny their owner write or search permission (a layer may ship a 0500 dir),
// which stop os.RemoveAll when not running as root. Symlinks are never followed.
func removeAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
