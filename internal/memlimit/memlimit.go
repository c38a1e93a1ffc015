// Package memlimit gives the Go runtime the container's memory limit as its
// soft limit. A process in a cgroup with a memory limit (an OCI Container
// Instance, a Kubernetes pod with limits) is killed when it goes over it,
// while the collector, left to GOGC alone, lets the heap grow to twice what
// survived the last collection: a full reconcile whose live heap is half
// the container would be killed at its peak. With the limit set, the
// collector runs more often as the heap nears it instead.
//
// GOMEMLIMIT, when set, wins: the runtime has read it already and Apply
// leaves it alone.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Share is the part of the container's limit given to the runtime as its
// soft limit; the rest is for what the limit counts and the Go heap does
// not (the binary, thread stacks outside the heap, the page cache charged
// to the cgroup).
const Share = 0.9

// FromCgroup returns the memory limit of the cgroup this process is in,
// read from fsys, the root file system ("proc/self/cgroup", then the
// cgroup's "memory.max" under "sys/fs/cgroup" on cgroup v2, or
// "memory.limit_in_bytes" under "sys/fs/cgroup/memory" on v1). ok is false
// when there is no limit: no cgroup file, or a limit of "max" (v2) or the
// v1 kernel's "unlimited" (a page-rounded 2^63-1).
func FromCgroup(fsys fs.FS) (limit int64, ok bool, err error) {
	self, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("memlimit: %w", err)
	}
	v2, v1, err := parseSelf(self)
	if err != nil {
		return 0, false, err
	}
	// In a container the cgroup namespace shows the container's own cgroup
	// as "/", and its files are at the root of the mount; a process that
	// sees the host's hierarchy finds them under its path.
	var tries []string
	if v2 != "" {
		tries = append(tries, path.Join("sys/fs/cgroup", v2, "memory.max"), "sys/fs/cgroup/memory.max")
	}
	if v1 != "" {
		tries = append(tries, path.Join("sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"), "sys/fs/cgroup/memory/memory.limit_in_bytes")
	}
	for _, name := range tries {
		b, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("memlimit: %w", err)
		}
		return parseLimit(name, b)
	}
	return 0, false, nil
}

// unlimitedV1 is where cgroup v1 reports "no limit" from: 2^63-1 rounded
// down to a page, or anything above a petabyte.
const unlimitedV1 = 1 << 50

// parseLimit reads a memory.max or memory.limit_in_bytes file.
func parseLimit(name string, b []byte) (int64, bool, error) {
	s := string(bytes.TrimSpace(b))
	if s == "max" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, fmt.Errorf("memlimit: %s holds %.40q, not a number of bytes or \"max\"", name, s)
	}
	if n >= unlimitedV1 {
		return 0, false, nil
	}
	return n, true, nil
}

// parseSelf reads /proc/self/cgroup: the v2 path (the "0::" line) and the
// v1 memory controller's path, either empty when absent.
func parseSelf(b []byte) (v2, v1 string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		id, rest, ok1 := strings.Cut(line, ":")
		ctrls, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("memlimit: /proc/self/cgroup line %d %.60q: want ID:CONTROLLERS:/PATH", n, line)
		}
		switch {
		case id == "0" && ctrls == "":
			v2 = p
		case v1 == "" && hasController(ctrls, "memory"):
			v1 = p
		}
	}
	return v2, v1, sc.Err()
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// Apply sets the runtime's soft memory limit to Share of the container's,
// unless the environment (lookupEnv, as os.LookupEnv) sets GOMEMLIMIT or
// there is no container limit, and returns the limit it set (0: none) with
// the container's.
func Apply(fsys fs.FS, lookupEnv func(string) (string, bool)) (set, container int64, err error) {
	if v, ok := lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return 0, 0, nil
	}
	container, ok, err := FromCgroup(fsys)
	if err != nil || !ok {
		return 0, 0, err
	}
	set = int64(float64(container) * Share)
	debug.SetMemoryLimit(set)
	return set, container, nil
}
