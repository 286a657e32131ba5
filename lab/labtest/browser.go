package labtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ArtifactsEnv names the directory browser tests keep their screenshots
// in; ~/.cache/erlab/artifacts when unset.
const ArtifactsEnv = "ERLAB_ARTIFACTS"

// Artifact is where a test keeps a file a person may want to look at
// after the run (a screenshot): ERLAB_ARTIFACTS/NAME, the directory made.
func Artifact(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(cache, "erlab", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// Browser loads url in Debian's chromium, headless, driven by
// playwright-core (scripts/browser/page.mjs, which scripts/setup installs),
// runs probe — the body of a JavaScript function run in the page, or a
// module whose default export gets Playwright's page (to click with the
// mouse) — and decodes what it returns into v. The page's full screenshot is kept at
// Artifact(shot). An error on the page (an exception, a console error, a
// failed load) fails the test.
func Browser(t testing.TB, url, shot, probe string, v any) {
	t.Helper()
	dir := RequireBrowser(t)
	// A driver (Playwright's page in hand) is a module; a probe, the body
	// of a function run in the page.
	probeFile := filepath.Join(t.TempDir(), "probe.js")
	if strings.Contains(probe, "export default") {
		probeFile = filepath.Join(t.TempDir(), "driver.mjs")
	}
	if err := os.WriteFile(probeFile, []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	shotPath := Artifact(t, shot)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "page.mjs"), url, shotPath, probeFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("browser: %v\n%s", err, stderr.String())
	}
	var out struct {
		Result json.RawMessage `json:"result"`
		Errors []string        `json:"errors"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("browser: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if len(out.Errors) > 0 {
		t.Fatalf("the page of %s: %s", url, strings.Join(out.Errors, "; "))
	}
	if err := json.Unmarshal(out.Result, v); err != nil {
		t.Fatalf("browser: the probe's result: %v\n%s", err, out.Result)
	}
	t.Logf("screenshot of %s: %s", url, shotPath)
}

// RequireBrowser skips a browser test in the kernel tier (the host tier
// has run it: chromium under the microVM's software emulation would only
// be slower), and where chromium, node or playwright-core is missing
// (fails it in CI, where scripts/setup installs them). A test calls it
// before it deploys anything; it returns the page driver's directory.
func RequireBrowser(t testing.TB) string {
	t.Helper()
	if KernelTier() {
		t.Skip("browser tests run in the host tier")
	}
	RequireTool(t, "node")
	RequireTool(t, "chromium")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "scripts", "browser")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		msg := "playwright-core is not installed in scripts/browser (scripts/setup installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// repoRoot is the directory of erlab's go.mod, above the test's own.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/erlab-dev/erlab")) {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no erlab go.mod above the test's directory")
		}
		dir = up
	}
}
