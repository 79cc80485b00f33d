//go:build !linux

package selfmem

import "errors"

// ReleaseStartupPages does nothing outside Linux: MADV_PAGEOUT is Linux's.
func ReleaseStartupPages() (int64, error) {
	return 0, errors.New("releasing the executable's start-up pages needs Linux")
}
