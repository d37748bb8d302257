//go:build !linux

package load

import (
	"errors"
	"time"
)

func clockCPU(int) (time.Duration, error) {
	return 0, errors.ErrUnsupported
}
