package memlimit

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
)

func TestFromCgroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		limit int64
		ok    bool
		err   string
	}{
		{name: "no cgroup file", files: map[string]string{}},
		{name: "v2 in a container (namespaced: the root)", files: map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "2147483648\n",
		}, limit: 2 << 30, ok: true},
		{name: "v2 seen from the host: the process's own cgroup", files: map[string]string{
			"proc/self/cgroup":         "0::/system.slice/iamflow.service\n",
			"sys/fs/cgroup/memory.max": "max\n",
			"sys/fs/cgroup/system.slice/iamflow.service/memory.max": "1073741824\n",
		}, limit: 1 << 30, ok: true},
		{name: "v2 without a limit", files: map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n",
		}},
		{name: "v1", files: map[string]string{
			"proc/self/cgroup":                           "12:cpu,cpuacct:/\n11:memory:/kubepods/pod1\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912",
		}, limit: 512 << 20, ok: true},
		{name: "v1 unlimited", files: map[string]string{
			"proc/self/cgroup":                           "11:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}},
		{name: "cgroup without a memory file", files: map[string]string{"proc/self/cgroup": "0::/\n"}},
		{name: "garbage limit", files: map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "lots\n",
		}, err: `sys/fs/cgroup/memory.max holds "lots", not a number of bytes or "max"`},
		{name: "garbage cgroup line", files: map[string]string{"proc/self/cgroup": "nonsense\n"},
			err: `/proc/self/cgroup line 1 "nonsense": want ID:CONTROLLERS:/PATH`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for n, c := range tc.files {
				fsys[n] = &fstest.MapFile{Data: []byte(c)}
			}
			limit, ok, err := FromCgroup(fsys)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || limit != tc.limit || ok != tc.ok {
				t.Fatalf("FromCgroup = %d, %v, %v; want %d, %v", limit, ok, err, tc.limit, tc.ok)
			}
		})
	}
}

func TestApply(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	fsys := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("2147483648\n")},
	}
	debug.SetMemoryLimit(math.MaxInt64)
	set, container, err := Apply(fsys, func(string) (string, bool) { return "", false })
	if want := int64(2 << 30); err != nil || container != want || set != int64(float64(want)*Share) {
		t.Fatalf("Apply = %d, %d, %v", set, container, err)
	}
	if got := debug.SetMemoryLimit(-1); got != set {
		t.Errorf("runtime limit %d, want %d", got, set)
	}
	// GOMEMLIMIT set by the operator wins.
	debug.SetMemoryLimit(math.MaxInt64)
	set, _, err = Apply(fsys, func(k string) (string, bool) {
		if k == "GOMEMLIMIT" {
			return "1GiB", true
		}
		return "", false
	})
	if err != nil || set != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set, Apply set %d (%v)", set, err)
	}
}

func FuzzParseSelf(f *testing.F) {
	f.Add([]byte("0::/\n"))
	f.Add([]byte("12:cpu,cpuacct:/\n11:memory:/kubepods/pod1\n0::/x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v2, v1, err := parseSelf(b)
		if err == nil && ((v2 != "" && !strings.HasPrefix(v2, "/")) || (v1 != "" && !strings.HasPrefix(v1, "/"))) {
			t.Fatalf("paths %q %q not absolute", v2, v1)
		}
	})
}
