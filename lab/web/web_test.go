package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/labtest"
)

// dagreSHA256 is the SHA-256 of dist/dagre.min.js in @dagrejs/dagre
// 3.1.4 on npm, which assets/dagre.min.js is, unchanged (MIT, its
// LICENSE beside it).
const dagreSHA256 = "413e0ebe0fe7bfe47140ad029d7ebf9296f6867d181e1d4a12db87b99feaaf61"

func server(t *testing.T, file string, opts Options) (*Server, string) {
	t.Helper()
	path := labtest.WithKeys(t, "../../topologies/"+file)
	top := labtest.Load(t, path)
	s, err := New(lab.FromTopology(top, labtest.Options(t)), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, filepath.Dir(path)
}

func get(t *testing.T, h http.Handler, path, host string) (int, string, http.Header) {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	if host != "" {
		r.Host = host
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String(), w.Result().Header
}

// TestPageHasNoKey: what the page is given of labs keyed by files (MACsec
// SAKs, an IKE pre-shared key) names their nodes and links, and holds
// none of the keys.
func TestPageHasNoKey(t *testing.T) {
	for _, file := range []string{"er-direct.yml", "er-vpn-coexistence.yml", "er-vwan-ipsec.yml"} {
		s, dir := server(t, file, Options{})
		code, body, _ := get(t, s, "/api/lab", "")
		if code != 200 {
			t.Fatalf("%s: /api/lab: %d %s", file, code, body)
		}
		keys, _ := os.ReadDir(filepath.Join(dir, "keys"))
		if len(keys) == 0 {
			t.Fatalf("%s: no key files to look for", file)
		}
		for _, k := range keys {
			b, _ := os.ReadFile(filepath.Join(dir, "keys", k.Name()))
			if key := strings.TrimSpace(string(b)); strings.Contains(strings.ToLower(body), strings.ToLower(key)) {
				t.Errorf("%s: the page is given the key of %s", file, k.Name())
			}
		}
		for _, n := range s.lab.Topology().Nodes {
			if !strings.Contains(body, `"name":"`+n.Name+`"`) {
				t.Errorf("%s: the page lacks node %s", file, n.Name)
			}
		}
	}
}

// TestActionsNeedTheToken: an action without the token, or with another,
// is refused; a read-only server refuses all; with the token, an action
// reaches the lab (here not deployed, which it says).
func TestActionsNeedTheToken(t *testing.T) {
	s, _ := server(t, "er-bgp.yml", Options{Token: "the-token"})
	post := func(s *Server, token string) (int, string) {
		r := httptest.NewRequest("POST", "/api/link", strings.NewReader(`{"node":"ce1","iface":"eth1","action":"down"}`))
		if token != "" {
			r.Header.Set(TokenHeader, token)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	for _, tok := range []string{"", "another"} {
		if code, body := post(s, tok); code != http.StatusUnauthorized {
			t.Errorf("token %q: %d %s", tok, code, body)
		}
	}
	if code, body := post(s, "the-token"); code != http.StatusBadRequest || !strings.Contains(body, "not deployed") {
		t.Errorf("with the token, on a lab not deployed: %d %s", code, body)
	}
	ro, _ := server(t, "er-bgp.yml", Options{Token: "the-token", ReadOnly: true})
	if code, body := post(ro, "the-token"); code != http.StatusForbidden || !strings.Contains(body, "read-only") {
		t.Errorf("read-only: %d %s", code, body)
	}
	if len(s.Token()) != len("the-token") {
		t.Errorf("token %q", s.Token())
	}
	random, _ := server(t, "er-bgp.yml", Options{})
	if len(random.Token()) != 32 {
		t.Errorf("a random token has %d hex digits, want 32 (128 bits)", len(random.Token()))
	}
}

// TestLoopbackOnly: on loopback the server answers its own address only,
// not a name that resolves to it from elsewhere.
func TestLoopbackOnly(t *testing.T) {
	s, _ := server(t, "er-bgp.yml", Options{})
	s.acceptHosts(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8480})
	if code, _, _ := get(t, s, "/api/lab", "attacker.example:8480"); code != http.StatusMisdirectedRequest {
		t.Errorf("another host name: %d", code)
	}
	for _, h := range []string{"127.0.0.1:8480", "localhost:8480"} {
		if code, _, _ := get(t, s, "/api/lab", h); code != 200 {
			t.Errorf("%s: %d", h, code)
		}
	}
}

// TestAssets: the page and everything it loads are served from the
// binary, under a policy that loads nothing from elsewhere; the graph
// library is the one published on npm, unchanged.
func TestAssets(t *testing.T) {
	s, _ := server(t, "er-bgp.yml", Options{})
	code, page, hdr := get(t, s, "/", "")
	if code != 200 || !strings.Contains(page, "<svg id=\"lab\"") {
		t.Fatalf("/: %d\n%s", code, page)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("the page loads %d files", len(refs))
	}
	for _, m := range refs {
		if strings.Contains(m[1], "//") {
			t.Errorf("the page loads %s from elsewhere", m[1])
		}
		if code, _, _ := get(t, s, "/"+m[1], ""); code != 200 {
			t.Errorf("%s: %d", m[1], code)
		}
	}
	f, err := assets.Open("assets/dagre.min.js")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	io.Copy(h, f)
	if got := hex.EncodeToString(h.Sum(nil)); got != dagreSHA256 {
		t.Errorf("assets/dagre.min.js is not @dagrejs/dagre 3.1.4's dist/dagre.min.js: sha256 %s", got)
	}
}
