package disk

import (
	"errors"

	"golang.org/x/sys/unix"
)

// ReadFull reads from the descriptor fd into b until b is full or the file ends (EINTR is
// retried), and returns how many bytes it read.
func ReadFull(fd int, b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Read(fd, b[done:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			break
		}
		done += n
	}
	return done, nil
}
