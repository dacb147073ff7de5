package cas

// Small filesystem helpers of the cache: last-use stamps, synced writes, syncfs.

import (
	"os"
	"time"
)

func touch(path string) {
	now := time.Now()
	os.Chtimes(path, now, now)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeFile writes b to path through a synced file in tmp/ and a rename.
func (c *Cache) writeFile(path string, b []byte) error {
	f, err := os.CreateTemp(c.path("tmp"), "file-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
