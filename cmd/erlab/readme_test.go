package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/vlan"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
)

// block is a fenced code block of the README.
type block struct {
	lang   string
	text   string
	line   int    // of the opening fence
	before string // the paragraph above it
}

func readmeBlocks(t *testing.T) []block {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []block
		cur    *block
		para   []string
		body   strings.Builder
		blank  bool // a blank line ended the last paragraph
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{lang: strings.TrimPrefix(line, "```"), line: n, before: strings.Join(para, "\n")}
			blank = false
			body.Reset()
		case cur != nil && line == "```":
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur, para = nil, nil
			blank = false
		case cur != nil:
			body.WriteString(line + "\n")
		case strings.TrimSpace(line) == "":
			blank = true
		default:
			if blank {
				para, blank = nil, false
			}
			para = append(para, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// readmeHarness wraps each README topology fragment (known by its first
// line) into a whole lab, so that the fragment is checked as a user would
// paste it. A fragment with no harness here fails the test: a new snippet
// must be registered to be checked.
var readmeHarness = map[string]string{
	"    ce1:": `name: readme-bgp
topology:
  nodes:
{{}}
    msee1:
      kind: router
      interfaces:
        eth1: { addresses: [192.168.100.130/30] }
      bgp: {asn: 12076, neighbors: [{interface: eth1, remote-as: 65010}]}
  links:
    - endpoints: ["ce1:eth1", "msee1:eth1"]
`,
	"  links:": `name: readme-macsec
topology:
  nodes:
    ce:
      interfaces: {macsec0: {addresses: [192.168.100.129/30]}}
    msee:
      interfaces: {macsec0: {addresses: [192.168.100.130/30]}}
{{}}
`,
	"      macsec:": `name: readme-mka
topology:
  nodes:
    ce:
      interfaces: {macsec0: {addresses: [192.168.100.129/30]}}
    msee:
      interfaces: {macsec0: {addresses: [192.168.100.130/30]}}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
{{}}
`,
	"  tunnels:": `name: readme-ipsec
topology:
  nodes:
    ce:
      forward: true
      interfaces:
        eth1: {addresses: [198.51.100.1/30]}
        eth2: {addresses: [10.10.0.1/24]}
        ipsec0: {addresses: [169.254.21.1/30]}
    azure:
      forward: true
      interfaces:
        eth1: {addresses: [198.51.100.2/30]}
        eth2: {addresses: [10.20.0.1/24]}
        ipsec0: {addresses: [169.254.21.2/30]}
    host: {interfaces: {eth1: {addresses: [10.10.0.4/24]}}}
    vm: {interfaces: {eth1: {addresses: [10.20.0.4/24]}}}
  links:
    - endpoints: ["ce:eth1", "azure:eth1"]
    - endpoints: ["host:eth1", "ce:eth2"]
    - endpoints: ["vm:eth1", "azure:eth2"]
{{}}
`,
}

var readmeKeyFile = regexp.MustCompile(`file:\s*(keys/[\w.-]+)`)

// TestREADMETopologies validates every topology the README shows, whole
// files as they are and fragments inside a harness, with the keys and
// environment variables they name made up; and checks that the README's
// validate example prints exactly what the README says.
func TestREADMETopologies(t *testing.T) {
	t.Setenv("PRIMARY_SAK_B", strings.Repeat("ab", 32))
	t.Setenv("BGP_MD5", "not-a-secret")
	blocks := readmeBlocks(t)
	checked := 0
	for i, b := range blocks {
		if b.lang != "yaml" {
			continue
		}
		checked++
		first, _, _ := strings.Cut(b.text, "\n")
		src := b.text
		if !strings.HasPrefix(src, "name:") {
			h, ok := readmeHarness[first]
			if !ok {
				t.Errorf("README.md:%d: a topology fragment starting %q has no harness in readme_test.go", b.line, first)
				continue
			}
			src = strings.Replace(h, "{{}}\n", b.text, 1)
		}
		dir := t.TempDir()
		t.Chdir(dir)
		os.Mkdir("keys", 0o700)
		for _, m := range readmeKeyFile.FindAllStringSubmatch(src, -1) {
			// As labtest.WithKeys: 16 bytes for a CAK or CKN, 36 for an
			// AES-256-GCM ESP key with its salt, 32 for the rest.
			n := map[string]int{".cak": 16, ".ckn": 16, ".esp": 36}[filepath.Ext(m[1])]
			if n == 0 {
				n = 32
			}
			key := make([]byte, n)
			rand.Read(key)
			os.WriteFile(m[1], []byte(hex.EncodeToString(key)+"\n"), 0o600)
		}
		name := "readme.yml"
		if strings.Contains(b.before, "`bad.yml`") {
			name = "bad.yml"
		}
		os.WriteFile(name, []byte(src), 0o644)
		_, stderr, code := run(t, "validate", "--no-kernel", "-t", name)
		if name != "bad.yml" {
			if code != 0 {
				t.Errorf("README.md:%d: the topology does not validate:\n%s\n%s", b.line, stderr, src)
			}
			continue
		}
		// The next block is the session the README shows for it.
		want := ""
		if i+1 < len(blocks) {
			want = blocks[i+1].text
		}
		cmdLine, output, _ := strings.Cut(want, "\n")
		if cmdLine != "$ erlab validate -t bad.yml" || code != 1 || stderr != output {
			t.Errorf("README.md:%d: erlab validate -t bad.yml exits %d and prints\n%s\nthe README shows:\n%s", b.line, code, stderr, want)
		}
	}
	if checked < 6 {
		t.Errorf("found %d topologies in the README; the parser lost some", checked)
	}
}

// TestIntegrationREADMECapabilityError: on a kernel without 802.1Q, the
// starter lab's deploy prints what the README shows, with this kernel's
// release and this tree's paths, and a command that runs from anywhere.
func TestIntegrationREADMECapabilityError(t *testing.T) {
	labtest.Integration(t)
	if missing, err := kernel.Probe([]*kernel.Feature{vlan.KernelDot1Q}); err != nil || len(missing) == 0 {
		t.Skip("this kernel has 802.1Q: the starter lab deploys here (the README's example is for kernels without it)")
	}
	var want string
	for _, b := range readmeBlocks(t) {
		if strings.HasPrefix(b.text, "erlab: this kernel (") {
			want = b.text
		}
	}
	if want == "" {
		t.Fatal("the README shows no capability error")
	}
	root, _ := filepath.Abs("../..")
	file := filepath.Join(root, "topologies/er-peerings-vlan.yml")
	uname, _ := exec.Command("uname", "-r").Output()
	want = regexp.MustCompile(`this kernel \([^)]*\)`).ReplaceAllString(want, "this kernel ("+strings.TrimSpace(string(uname))+")")
	want = strings.ReplaceAll(want, "/work/main/", root+"/")
	t.Chdir(t.TempDir()) // anywhere but the tree
	_, stderr, code := run(t, "deploy", "-q", "-t", file)
	if code != 1 || stderr != want {
		t.Errorf("deploy on this kernel: exit %d\n%s\nthe README shows:\n%s", code, stderr, want)
	}
}

// The README's drill runs as the README shows it: both flows pass, and
// --runs 2 adds the summary over the runs.
func TestIntegrationREADMEDrill(t *testing.T) {
	labtest.Integration(t)
	if labtest.KernelTier() {
		// The emulated guest takes up to 0.1 s to put a blackhole on and
		// as long to take it off, which the outage counts: one run measured
		// 601 ms against the README's 600 ms bound.
		t.Skip("the host tier runs it: the lab needs nothing this host's kernel lacks, and the README's bounds are the host's")
	}
	var src string
	for _, b := range readmeBlocks(t) {
		if b.lang == "yaml" && strings.HasPrefix(b.text, "name: drill-demo\n") {
			src = b.text
		}
	}
	if src == "" {
		t.Fatal("README.md has no drill-demo topology")
	}
	file, _ := cliLab(t, src, "drill-demo", "drill-demo")
	if _, stderr, code := run(t, "deploy", "-q", "-t", file); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, stderr)
	}
	out, stderr, code := run(t, "drill", "run", "-t", file, "--runs", "2", "--junit", filepath.Join(t.TempDir(), "drills.xml"))
	for _, want := range []string{"DRILL blackhole-half-second: PASS", "PASS  a->b max-outage 600ms", "PASS  b->a max-outage 600ms", "outage over 2 runs (min / median / max):"} {
		if !strings.Contains(out, want) {
			t.Errorf("exit %d; no %q in:\n%s\n%s", code, want, out, stderr)
		}
	}
	if code != 0 {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

// TestIntegrationREADMEContainerLab deploys the README's container lab as
// a user would, with the CLI (its published port and host link given names
// free here): the page comes through the port on the host's loopback,
// inspect's JSON has containerlab's fields, the host link's end is in the
// host's namespace, and destroy takes the containers, the network and the
// host's end away.
func TestIntegrationREADMEContainerLab(t *testing.T) {
	labtest.Integration(t)
	dc := labtest.RequireDocker(t)
	var src string
	for _, b := range readmeBlocks(t) {
		if b.lang == "yaml" && strings.HasPrefix(b.text, "name: web\n") {
			src = b.text
		}
	}
	if src == "" || !strings.Contains(src, "127.0.0.1:8080:80") || !strings.Contains(src, "host:web-cli") || !strings.Contains(src, "image: "+labtest.TestImage) {
		t.Fatalf("README.md has no web topology as this test knows it:\n%s", src)
	}
	port := strconv.Itoa(labtest.FreePort(t))
	hostEnd := fmt.Sprintf("wc%04x", mrand.IntN(1<<16))
	src = strings.NewReplacer("127.0.0.1:8080:80", "127.0.0.1:"+port+":80", "host:web-cli", "host:"+hostEnd).Replace(src)
	file, name := cliLab(t, src, "web", "web")
	if _, stderr, code := run(t, "deploy", "-q", "-t", file); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, stderr)
	}
	if page := labtest.GetPage(t, "http://127.0.0.1:"+port+"/passwd", 10*time.Second); !strings.Contains(page, "nobody:x:65534") {
		t.Errorf("srv's /etc/passwd through the port: %q", page)
	}
	out, stderr, code := run(t, "inspect", "-t", file, "-f", "json")
	if code != 0 {
		t.Fatalf("inspect: exit %d\n%s", code, stderr)
	}
	var info struct {
		Nodes []struct {
			LabName     string `json:"lab_name"`
			Name        string `json:"name"`
			Kind        string `json:"kind"`
			State       string `json:"state"`
			ContainerID string `json:"container_id"`
			Image       string `json:"image"`
			IPv4        string `json:"ipv4_address"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Nodes) != 2 {
		t.Fatalf("inspect -f json: %v\n%s", err, out)
	}
	for _, n := range info.Nodes {
		want := map[string]string{"srv": "172.20.30.10/24", "cli": ""}[n.Name]
		if n.LabName != name || n.Kind != "linux" || n.State != "running" || len(n.ContainerID) != 64 || n.Image != labtest.TestImage || n.IPv4 != want {
			t.Errorf("inspect of %s: %+v", n.Name, n)
		}
	}
	if _, err := netlink.LinkByName(hostEnd); err != nil {
		t.Errorf("the host link's end %s: %v", hostEnd, err)
	}
	if _, stderr, code := run(t, "destroy", "-t", file); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, stderr)
	}
	if _, err := netlink.LinkByName(hostEnd); err == nil {
		t.Errorf("the host link's end %s is left", hostEnd)
	}
	if _, err := dc.NetworkInspect(context.Background(), "erlab-"+name, client.NetworkInspectOptions{}); err == nil {
		t.Errorf("network erlab-%s is left", name)
	}
}

// TestREADMEExpressRouteQuick: the README's ten-line circuit expands into
// the ten nodes the README names after it, and the graph the README shows
// of er-global-reach.yml is the one erlab draws.
func TestREADMEExpressRouteQuick(t *testing.T) {
	var src, graph string
	blocks := readmeBlocks(t)
	for _, b := range blocks {
		if b.lang == "yaml" && strings.HasPrefix(b.text, "name: er-quick\n") {
			src = b.text
		}
		if strings.HasPrefix(b.text, "$ erlab graph -t topologies/er-global-reach.yml --view circuits\n") {
			graph = b.text
		}
	}
	if src == "" || graph == "" {
		t.Fatal("README.md lacks the er-quick declaration or the circuits graph")
	}
	file := filepath.Join(t.TempDir(), "er-quick.yml")
	os.WriteFile(file, []byte(src), 0o644)
	out, stderr, code := run(t, "expand", "-t", file)
	if code != 0 {
		t.Fatalf("expand: exit %d\n%s", code, stderr)
	}
	var nodes []string
	inNodes := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "  nodes:":
			inNodes = true
		case inNodes && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     ") && strings.HasSuffix(line, ":") && !strings.HasPrefix(line, "    #"):
			nodes = append(nodes, strings.TrimSuffix(strings.TrimSpace(line), ":"))
		case inNodes && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   "):
			inNodes = false
		}
	}
	want := []string{"onprem-core", "onprem-host", "contoso-ce1", "contoso-ce2", "contoso-pe1", "contoso-pe2", "contoso-msee1", "contoso-msee2", "hub-gw", "hub-vm"}
	slices.Sort(nodes)
	slices.Sort(want)
	if !slices.Equal(nodes, want) {
		t.Errorf("er-quick expands into %v; the README names %v", nodes, want)
	}
	cmdLine, shown, _ := strings.Cut(graph, "\n")
	args := strings.Fields(strings.TrimPrefix(cmdLine, "$ erlab "))
	for i, a := range args {
		if strings.HasPrefix(a, "topologies/") {
			args[i] = "../../" + a
		}
	}
	if got, stderr, code := run(t, args...); code != 0 || got != shown {
		t.Errorf("%s: exit %d\n%s%s\nthe README shows:\n%s", cmdLine, code, got, stderr, shown)
	}
}
