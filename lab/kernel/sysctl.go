package kernel

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SysctlPath turns a sysctl key into its /proc/sys path. Keys use dots
// (net.ipv4.ip_forward) or slashes (net/ipv4/conf/eth1.100/rp_filter): the
// slash form is for keys whose interface name holds a dot, as sysctl(8) does.
func SysctlPath(key string) string {
	if strings.Contains(key, "/") {
		return filepath.Join("/proc/sys", key)
	}
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// SysctlSet writes sysctls inside a namespace: ip netns exec NAME sysctl -w KEY=VALUE.
// /proc/sys/net shows the namespace of the thread that opens it, so the
// writes happen on a thread inside the namespace.
func SysctlSet(ns string, kv [][2]string) error {
	return Do(ns, func() error {
		for _, s := range kv {
			if err := os.WriteFile(SysctlPath(s[0]), []byte(s[1]), 0); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", s[0], s[1], err)
			}
		}
		return nil
	})
}

// SysctlGet reads one sysctl inside a namespace.
func SysctlGet(ns, key string) (string, error) {
	var val string
	err := Do(ns, func() error {
		b, err := os.ReadFile(SysctlPath(key))
		val = strings.TrimSpace(string(b))
		return err
	})
	return val, err
}

// SysctlsExist reports, for each key, whether this kernel has it, as a
// network namespace sees it: the keys are looked up from a thread inside a
// new, unnamed namespace (so the answer is a fresh node's, and nothing is
// left behind). Per-interface keys must name an interface that a fresh
// namespace has (all, default, lo).
func SysctlsExist(keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	if err := InNewNetNS(func() error {
		for _, k := range keys {
			_, err := os.Stat(SysctlPath(k))
			out[k] = err == nil
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look up sysctls: %w", err)
	}
	return out, nil
}
