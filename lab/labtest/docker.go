package labtest

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestImage is the image container tests run: Debian's static busybox
// (sh, ip, ping, cat, sleep, ...), root and nobody, imported from this
// host's /bin/busybox, since no registry is reachable here.
const TestImage = "erlab/busybox:3"

// RequireDocker makes sure a Docker daemon answers and TestImage is
// there (importing it when it is not), and returns a client. Without a
// daemon the test skips on a developer's host and fails under CI; in the
// kernel tier it skips, as the microVM runs no daemon and the host tier
// has run it.
func RequireDocker(t testing.TB) *client.Client {
	t.Helper()
	if KernelTier() {
		t.Skip("container tests run in the host tier: the microVM runs no Docker daemon")
	}
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
	for _, app := range []string{"sh", "ip", "ping", "cat", "sleep", "echo", "ls", "ps", "hostname", "id", "env", "true", "false", "grep", "sysctl"} {
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
