package selfmem

import (
	"fmt"
	"reflect"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// ReleaseStartupPages asks the kernel to take out of this process's
// resident set the pages of its own executable's read-only mappings (code
// and read-only data: function tables, type data), with MADV_PAGEOUT
// (Linux 5.4 and later). They are clean pages of the file, so nothing is
// written anywhere: the pages the process goes on using come back on their
// next use (from the page cache, or from the file if the kernel has dropped
// them meanwhile), and those touched only while starting (every package's
// initialisation, configuration, registration, the first connections) stay
// out until they are used again. soak-exporter has about 20 MB of them
// resident after its start-up, of which half to two thirds are used again
// (docs/benchmarks.md, "Memory at 1,000 clients").
//
// It returns the change of the process's file-backed resident memory
// (positive when it shrank) and an error when the mappings cannot be read
// or the kernel refuses the advice (EINVAL before Linux 5.4).
func ReleaseStartupPages() (int64, error) {
	self, err := procfs.Self()
	if err != nil {
		return 0, fmt.Errorf("read own process: %w", err)
	}
	before, err := fileResident(self)
	if err != nil {
		return 0, err
	}
	maps, err := self.ProcMaps()
	if err != nil {
		return 0, fmt.Errorf("read own mappings: %w", err)
	}
	exe := executableMapping(maps, reflect.ValueOf(ReleaseStartupPages).Pointer())
	if exe == nil {
		return 0, fmt.Errorf("no mapping of the executable holds its own code")
	}
	for _, m := range maps {
		if m.Dev != exe.Dev || m.Inode != exe.Inode || m.Perms.Write || m.EndAddr <= m.StartAddr {
			continue
		}
		// The addresses come from /proc/self/maps and are passed to the
		// kernel as numbers: nothing here dereferences them.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, m.StartAddr, m.EndAddr-m.StartAddr, unix.MADV_PAGEOUT); e != 0 {
			return 0, fmt.Errorf("madvise(MADV_PAGEOUT) on %s: %w", m.Pathname, e)
		}
	}
	after, err := fileResident(self)
	if err != nil {
		return 0, err
	}
	return before - after, nil
}

// executableMapping is the file mapping that holds address pc.
func executableMapping(maps []*procfs.ProcMap, pc uintptr) *procfs.ProcMap {
	for _, m := range maps {
		if m.StartAddr <= pc && pc < m.EndAddr && m.Inode != 0 {
			return m
		}
	}
	return nil
}

// fileResident is the process's file-backed resident memory in bytes.
func fileResident(p procfs.Proc) (int64, error) {
	st, err := p.NewStatus()
	if err != nil {
		return 0, fmt.Errorf("read own status: %w", err)
	}
	return int64(st.RssFile), nil
}
