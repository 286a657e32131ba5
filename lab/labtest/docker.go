package labtest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// TestImage is the image container tests run: Debian's static busybox,
// every applet linked, root and nobody, imported from this host's
// /bin/busybox (as scripts/images builds it), since no registry is
// reachable here.
const TestImage = "erlab/busybox:3"

// RequireDocker makes sure a Docker daemon answers and TestImage is
// there (importing it when it is not), and returns a client. Without a
// daemon the test skips on a developer's host and fails under CI; in the
// kernel tier it skips: the host tier runs it, and a container start in
// the emulated machine costs seconds (RequireDockerInVM is for the tests
// that need the full kernel too).
func RequireDocker(t testing.TB) *client.Client {
	t.Helper()
	if KernelTier() {
		t.Skip("container tests run in the host tier; the kernel tier runs those that need its kernel (RequireDockerInVM)")
	}
	return requireDocker(t)
}

// RequireDockerInVM is RequireDocker for a test of container nodes that
// needs the full kernel: in the kernel tier it starts a Docker daemon in
// the microVM first (once per test binary; the machine is thrown away
// with it).
func RequireDockerInVM(t testing.TB) *client.Client {
	t.Helper()
	if KernelTier() {
		if err := vmDocker(); err != nil {
			t.Fatalf("a Docker daemon in the microVM: %v", err)
		}
	}
	return requireDocker(t)
}

// vmDocker starts dockerd in the microVM: its image store on a tmpfs (the
// guest's root is an overlay, where only vfs would work, and slowly),
// cgroup2 mounted, and no bridge or iptables rules of its own, as
// scripts/dockerd starts it on a host.
var vmDocker = sync.OnceValue(func() error {
	if err := os.MkdirAll("/var/lib/docker", 0o711); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", "/var/lib/docker", "tmpfs", 0, "mode=0711"); err != nil {
		return fmt.Errorf("tmpfs on /var/lib/docker: %w", err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		if err := unix.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, ""); err != nil {
			return fmt.Errorf("cgroup2 on /sys/fs/cgroup: %w", err)
		}
	}
	logf, err := os.Create("/tmp/erlab-vm-dockerd.log")
	if err != nil {
		return err
	}
	cmd := exec.Command("dockerd", "--iptables=false", "--ip-forward=false", "--bridge=none", "--storage-driver=vfs")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	c, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer c.Close()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if _, err := c.Ping(context.Background(), client.PingOptions{}); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			log, _ := os.ReadFile("/tmp/erlab-vm-dockerd.log")
			return fmt.Errorf("dockerd did not answer within 2 minutes: %v\n%s", err, log)
		}
	}
})

func requireDocker(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		msg := "no Docker daemon answers: start one with scripts/dockerd (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := c.ImageInspect(ctx, TestImage); err == nil {
		return c
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("the test image is made of /bin/busybox (busybox-static): %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin/", "etc/", "proc/", "sys/", "dev/", "root/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	// Every applet, as scripts/images links them: the same image, whichever
	// made it.
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, app := range strings.Fields(string(list)) {
		if app == "busybox" {
			continue
		}
		tw.WriteHeader(&tar.Header{Name: "bin/" + app, Typeflag: tar.TypeSymlink, Linkname: "busybox"})
	}
	for name, body := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	res, err := c.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, TestImage,
		client.ImageImportOptions{Changes: []string{`CMD ["/bin/sleep", "infinity"]`}})
	if err != nil {
		t.Fatalf("import %s: %v", TestImage, err)
	}
	io.Copy(io.Discard, res) // the import is done when its progress ends
	res.Close()
	if _, err := c.ImageInspect(ctx, TestImage); err != nil {
		t.Fatalf("import %s: %v", TestImage, err)
	}
	return c
}

// FreePort is a TCP port free on the host's loopback now, for a lab that
// publishes one.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// GetPage polls an HTTP URL until it answers 200 (a published port is
// ready once the container's server listens) and returns the body.
func GetPage(t testing.TB, url string, within time.Duration) string {
	t.Helper()
	var body string
	Eventually(t, within, url+" answers 200", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	return body
}

// RequireImage makes sure a Docker daemon answers and a local image that
// scripts/images builds is there: without it the test skips on a
// developer's host (saying how to build it) and fails under CI, whose
// setup builds it.
func RequireImage(t testing.TB, image string) *client.Client {
	t.Helper()
	c := RequireDocker(t)
	if _, err := c.ImageInspect(context.Background(), image); err != nil {
		msg := "no image " + image + " here: scripts/images builds it (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return c
}
