package nodes

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// capNames are the kernel's capabilities by number (linux/capability.h),
// as Docker names them in CapAdd. Hand-written: the list is the kernel's
// ABI, and no library the engine already uses carries it.
var capNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// boundingCaps splits every capability the kernel knows into those this
// process's bounding set holds, which a container can be given, and
// those it lacks (here CAP_SYS_RESOURCE: runc cannot apply them, and
// docker run --privileged fails for them).
func boundingCaps() (have, lack []string, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		hex, ok := strings.CutPrefix(sc.Text(), "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("CapBnd %q: %w", hex, err)
		}
		for i, name := range capNames {
			if mask&(1<<i) != 0 {
				have = append(have, name)
			} else {
				lack = append(lack, name)
			}
		}
		return have, lack, nil
	}
	return nil, nil, fmt.Errorf("/proc/self/status has no CapBnd")
}
