package labtest

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestImage is the image container tests run: Debian's static busybox,
// every applet linked, root and nobody, imported from this host's
// /bin/busybox (as scripts/images builds it), since no registry is
// reachable here.
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
