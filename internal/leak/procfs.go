package leak

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// ProcfsConfig configures the procfs source.
type ProcfsConfig struct {
	// ProcPath is where procfs is mounted; CgroupPath the cgroup file system.
	ProcPath, CgroupPath string
	// PID selects the process; when 0, Match selects the lowest PID whose
	// command line (arguments joined by spaces) matches.
	PID   int
	Match *regexp.Regexp
}

// Procfs reads a process's resident memory and start time from procfs, and
// the memory limit of its cgroup when it can be found.
type Procfs struct {
	cfg  ProcfsConfig
	fs   procfs.FS
	now  func() time.Time
	self int
	pid  int // resolved PID, 0 when none yet
}

// NewProcfs returns the procfs source.
func NewProcfs(cfg ProcfsConfig, now func() time.Time) (*Procfs, error) {
	if cfg.PID == 0 && cfg.Match == nil {
		return nil, errors.New("procfs: a PID or a command-line pattern is required")
	}
	fs, err := procfs.NewFS(cfg.ProcPath)
	if err != nil {
		return nil, fmt.Errorf("procfs: %w", err)
	}
	return &Procfs{cfg: cfg, fs: fs, now: now, self: os.Getpid(), pid: cfg.PID}, nil
}

// Source returns "procfs".
func (p *Procfs) Source() string { return SourceProcfs }

// Sample reads the process once. With a pattern, the process is looked up
// again whenever the last one is gone.
func (p *Procfs) Sample(ctx context.Context) (Sample, error) {
	if err := ctx.Err(); err != nil {
		return Sample{}, err
	}
	t := p.now()
	if p.pid == 0 {
		pid, err := p.find()
		if err != nil {
			return Sample{}, err
		}
		p.pid = pid
	}
	s, err := readProc(p.fs, p.pid, t)
	if err != nil {
		if p.cfg.PID == 0 {
			p.pid = 0 // look it up again next time
		}
		return Sample{}, fmt.Errorf("procfs: pid %d: %w", p.pid, err)
	}
	s.Readings[0].Limit = cgroupLimit(p.cfg.ProcPath, p.cfg.CgroupPath, strconv.Itoa(p.pid))
	return s, nil
}

func (p *Procfs) find() (int, error) {
	procs, err := p.fs.AllProcs()
	if err != nil {
		return 0, fmt.Errorf("procfs: list processes: %w", err)
	}
	for _, pr := range procs { // ascending PID
		if pr.PID == p.self {
			continue
		}
		args, err := pr.CmdLine()
		if err != nil || len(args) == 0 {
			continue
		}
		if p.cfg.Match.MatchString(strings.Join(args, " ")) {
			return pr.PID, nil
		}
	}
	return 0, fmt.Errorf("procfs: no process matches %q", p.cfg.Match)
}

func readProc(fs procfs.FS, pid int, t time.Time) (Sample, error) {
	pr, err := fs.Proc(pid)
	if err != nil {
		return Sample{}, err
	}
	st, err := pr.Stat()
	if err != nil {
		return Sample{}, err
	}
	start, err := st.StartTime()
	if err != nil {
		start = 0 // restarts are still seen by a drop in memory
	}
	return Sample{
		Time:      t,
		Readings:  []Reading{{Kind: KindRSS, Bytes: float64(st.ResidentMemory())}},
		StartTime: start,
	}, nil
}

// cgroupLimit returns the memory limit (bytes) of the cgroup of pid (a
// number or "self"), or 0 when it is unlimited or cannot be found. It tries
// the process's own view of the cgroup file system first (through
// /proc/PID/root, which works for a container sharing the PID namespace when
// permitted), then the path from /proc/PID/cgroup under cgroupRoot. Both
// cgroup v2 (memory.max) and v1 (memory.limit_in_bytes) are read.
func cgroupLimit(procRoot, cgroupRoot, pid string) float64 {
	candidates := []string{
		filepath.Join(procRoot, pid, "root", "sys", "fs", "cgroup", "memory.max"),
		filepath.Join(procRoot, pid, "root", "sys", "fs", "cgroup", "memory", "memory.limit_in_bytes"),
	}
	if data, err := os.ReadFile(filepath.Join(procRoot, pid, "cgroup")); err == nil && cgroupRoot != "" {
		for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || strings.Contains(parts[2], "..") {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				candidates = append(candidates, filepath.Join(cgroupRoot, parts[2], "memory.max"))
			case strings.Contains(","+parts[1]+",", ",memory,"):
				candidates = append(candidates, filepath.Join(cgroupRoot, "memory", parts[2], "memory.limit_in_bytes"))
			}
		}
	}
	for _, c := range candidates {
		if v, ok := readLimit(c); ok {
			return v
		}
	}
	return 0
}

// readLimit reads a cgroup memory limit file: a number of bytes, or "max"
// (v2) or a huge number (v1) for no limit.
func readLimit(path string) (float64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, true
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	if v >= 1<<62 || v == 0 {
		return 0, true
	}
	return float64(v), true
}
