// Package web is erlab serve: one page that draws a deployed lab and
// follows it live (the lab's events, over server-sent events), from which
// a link can be pulled, restored or impaired and a drill run. The page and
// everything it loads are embedded in the binary: nothing is fetched at
// run time. It listens on loopback unless told otherwise; every action
// needs the token the server prints at start, and a read-only server takes
// none. Keys never reach the page: it is drawn from the lab's view
// (names, addresses, labels) and its events.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/drill"
	"github.com/erlab-dev/erlab/lab/netem"
)

//go:embed assets
var assets embed.FS

// TokenHeader carries the token with every action.
const TokenHeader = "X-Erlab-Token"

// Options configure a server.
type Options struct {
	// ReadOnly refuses every action: the page only watches.
	ReadOnly bool
	// Token is the actions' token; a random one when empty.
	Token string
	// Counters is the interval of the interfaces' packet rates the page
	// shows (1 s when zero).
	Counters time.Duration
	Log      *slog.Logger
}

// Server serves one deployed lab's page.
type Server struct {
	lab   *lab.Lab
	opts  Options
	hub   *hub
	view  *page
	mux   *http.ServeMux
	host  map[string]bool // the Host headers accepted, when on loopback
	drill drillState
}

// page is what the page draws: the lab's view and its drills.
type page struct {
	*lab.View
	ReadOnly bool        `json:"read_only"`
	Drills   []pageDrill `json:"drills"`
}

type pageDrill struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// New makes a server for a deployed lab.
func New(l *lab.Lab, opts Options) (*Server, error) {
	v, err := l.View()
	if err != nil {
		return nil, err
	}
	if opts.Token == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		opts.Token = hex.EncodeToString(b)
	}
	if opts.Counters == 0 {
		opts.Counters = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{lab: l, opts: opts, hub: newHub(), view: &page{View: v, ReadOnly: opts.ReadOnly, Drills: []pageDrill{}}}
	for _, d := range drill.Of(l.Topology()) {
		s.view.Drills = append(s.view.Drills, pageDrill{Name: d.Name, Description: d.Description})
	}
	static, _ := fs.Sub(assets, "assets")
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /", http.FileServerFS(static))
	s.mux.HandleFunc("GET /api/lab", s.handleLab)
	s.mux.HandleFunc("GET /api/events", s.handleEvents)
	s.mux.HandleFunc("POST /api/link", s.action(s.handleLink))
	s.mux.HandleFunc("POST /api/impair", s.action(s.handleImpair))
	s.mux.HandleFunc("POST /api/drill", s.action(s.handleDrill))
	s.mux.HandleFunc("GET /api/drill", s.handleDrillResult)
	s.mux.HandleFunc("GET /api/drill/timeline.svg", s.handleTimeline)
	return s, nil
}

// Token is the actions' token.
func (s *Server) Token() string { return s.opts.Token }

// Serve watches the lab and serves the page on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.acceptHosts(ln.Addr())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.drill.mu.Lock()
	s.drill.ctx = ctx
	s.drill.mu.Unlock()
	// A drill the page started ends with the server: cancelled, it puts
	// back what it changed before Serve returns.
	defer s.drill.wg.Wait()
	watchErr := make(chan error, 1)
	go func() {
		err := s.lab.Watch(ctx, lab.WatchOptions{Initial: true, Counters: s.opts.Counters}, s.hub.publish)
		s.hub.close()
		watchErr <- err
	}()
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		srv.Shutdown(shut)
	}()
	err := srv.Serve(ln)
	cancel()
	if werr := <-watchErr; werr != nil && !errors.Is(werr, context.Canceled) {
		return werr
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// acceptHosts sets the Host headers the server answers when it listens
// on loopback: there the page is this machine's alone, and a name that
// resolves here from elsewhere (DNS rebinding) is refused.
func (s *Server) acceptHosts(addr net.Addr) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return
	}
	port := fmt.Sprint(tcp.Port)
	s.host = map[string]bool{}
	for _, h := range []string{"127.0.0.1", "localhost", "[::1]", tcp.IP.String()} {
		s.host[net.JoinHostPort(strings.Trim(h, "[]"), port)] = true
	}
}

// ServeHTTP implements http.Handler: the Host check, then the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.host != nil && !s.host[r.Host] {
		http.Error(w, "erlab serve answers on loopback only; open the address it printed", http.StatusMisdirectedRequest)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	s.mux.ServeHTTP(w, r)
}

// action wraps an action's handler: refused on a read-only server, and
// without the token.
func (s *Server) action(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.ReadOnly {
			http.Error(w, "this server is read-only (erlab serve --read-only)", http.StatusForbidden)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(TokenHeader)), []byte(s.opts.Token)) != 1 {
			http.Error(w, "an action needs the token erlab serve printed ("+TokenHeader+")", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
		if err := h(w, r); err != nil {
			s.opts.Log.Info("action refused", "path", r.URL.Path, "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) handleLab(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.view) }

// handleEvents streams the lab's events (server-sent events): the state of
// everything first, then each change.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sub, snapshot := s.hub.subscribe()
	defer s.hub.unsubscribe(sub)
	send := func(e lab.Event) bool {
		b, _ := json.Marshal(e)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return true
	}
	for _, e := range snapshot {
		if !send(e) {
			return
		}
	}
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-sub:
			if !ok {
				return
			}
			if !send(e) {
				return
			}
			fl.Flush()
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// linkRequest names a link end and what to do with it.
type linkRequest struct {
	Node   string `json:"node"`
	Iface  string `json:"iface"`
	Action string `json:"action"` // down or up
}

func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) error {
	var req linkRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return fmt.Errorf("a link action is {node, iface, action: down|up}: %w", err)
	}
	if req.Action != "down" && req.Action != "up" {
		return fmt.Errorf("action %q: down or up", req.Action)
	}
	if err := s.lab.LinkSet(r.Context(), req.Node, req.Iface, req.Action == "up"); err != nil {
		return err
	}
	writeJSON(w, map[string]string{"did": fmt.Sprintf("%s:%s %s", req.Node, req.Iface, req.Action)})
	return nil
}

// impairRequest is a link end's impairment, netem's keys as the topology
// writes them; both impairs the other end too; clear takes it off.
type impairRequest struct {
	Node  string           `json:"node"`
	Iface string           `json:"iface"`
	Spec  netem.ParamsSpec `json:"spec"`
	Both  bool             `json:"both"`
	Clear bool             `json:"clear"`
}

func (s *Server) handleImpair(w http.ResponseWriter, r *http.Request) error {
	var req impairRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return fmt.Errorf("an impairment is {node, iface, spec: {delay, loss, ...}, both, clear}: %w", err)
	}
	var p netem.Params
	if !req.Clear {
		var err error
		if p, err = netem.ParseFlags(req.Spec); err != nil {
			return err
		}
		if p.Zero() {
			return errors.New("an impairment of nothing: give delay, loss, rate... or clear")
		}
	}
	ends := [][2]string{{req.Node, req.Iface}}
	if req.Both {
		peer, err := netem.Peer(s.lab, req.Node, req.Iface)
		if err != nil {
			return err
		}
		ends = append(ends, [2]string{peer.Node, peer.Iface})
	}
	for _, e := range ends {
		if err := netem.Impair(r.Context(), s.lab, e[0], e[1], p); err != nil {
			return err
		}
	}
	writeJSON(w, map[string]string{"did": p.String()})
	return nil
}

// drillState is the drill the server runs (one at a time) and the last
// one's result.
type drillState struct {
	mu      sync.Mutex
	running string
	last    string
	result  *drill.RunResult
	ctx     context.Context // the server's: a drill ends with it
	wg      sync.WaitGroup
}

func (s *Server) handleDrill(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return fmt.Errorf("a drill is {name}: %w", err)
	}
	var d *drill.Drill
	var names []string
	for _, x := range drill.Of(s.lab.Topology()) {
		names = append(names, x.Name)
		if x.Name == req.Name {
			d = x
		}
	}
	if d == nil {
		return fmt.Errorf("lab %s has no drill %q (its drills: %s)", s.lab.Name(), req.Name, strings.Join(names, ", "))
	}
	s.drill.mu.Lock()
	defer s.drill.mu.Unlock()
	if s.drill.running != "" {
		return fmt.Errorf("drill %s is running; one at a time", s.drill.running)
	}
	s.drill.running = d.Name
	ctx := s.drill.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	s.drill.wg.Add(1)
	go func() {
		defer s.drill.wg.Done()
		// The drill outlives the request that started it, not the server.
		res := drill.Run(ctx, s.lab, d, nil)
		s.drill.mu.Lock()
		s.drill.running, s.drill.last, s.drill.result = "", d.Name, &res
		s.drill.mu.Unlock()
	}()
	writeJSON(w, map[string]string{"did": "drill " + d.Name + " started"})
	return nil
}

// handleDrillResult says which drill runs, and the last one's verdict.
func (s *Server) handleDrillResult(w http.ResponseWriter, _ *http.Request) {
	s.drill.mu.Lock()
	defer s.drill.mu.Unlock()
	out := map[string]any{"running": s.drill.running, "last": s.drill.last}
	if s.drill.result != nil {
		out["pass"] = s.drill.result.Pass
		out["error"] = s.drill.result.Error
		out["expectations"] = s.drill.result.Check
	}
	writeJSON(w, out)
}

// handleTimeline draws the last drill's timeline (the SVG of erlab drill
// run --svg).
func (s *Server) handleTimeline(w http.ResponseWriter, _ *http.Request) {
	s.drill.mu.Lock()
	name, res := s.drill.last, s.drill.result
	s.drill.mu.Unlock()
	if res == nil {
		http.Error(w, "no drill has run here yet", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	if err := drill.SVG(w, name, 1, *res); err != nil {
		s.opts.Log.Info("timeline", "err", err)
	}
}
