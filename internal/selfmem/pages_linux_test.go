package selfmem

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReleaseStartupPages(t *testing.T) {
	// The test binary has read its own code and data while starting and
	// running the tests before this one: some of it is resident.
	released, err := ReleaseStartupPages()
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("this kernel has no MADV_PAGEOUT (Linux 5.4+): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if released <= 0 {
		t.Fatalf("file-backed resident memory shrank by %d bytes, want > 0", released)
	}
	t.Logf("released %d KB", released/1024)
	// The code paged out runs again: a second call works the same way.
	if _, err := ReleaseStartupPages(); err != nil {
		t.Fatal(err)
	}
}
