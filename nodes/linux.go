package nodes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/shlex"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Linux is containerlab's linux kind: a Docker container from a local
// image, with no network of Docker's. The engine's Docker Engine API
// (the moby client, which negotiates the daemon's version: Debian's
// dockerd 20.10 speaks 1.41) creates and starts it, and its network
// namespace is named erlab-<lab>.<node> like any node's, so that every
// feature works on it unchanged. Its name is that namespace's name, and
// its labels say which lab and node it is, so that destroy finds it from
// the lab's name alone.
type Linux struct{}

// The labels erlab puts on its containers.
const (
	LabelLab  = "erlab.lab"
	LabelNode = "erlab.node"
)

// ContainerCaps are the capabilities a container node gets: what a
// network lab needs of its own namespace (interfaces, raw sockets for
// ping and captures, mounts and namespaces for the tools that make them).
var ContainerCaps = []string{"NET_ADMIN", "NET_RAW", "SYS_ADMIN"}

func (Linux) Name() string { return "linux" }

// Check implements Kind: a container needs its image, and cmd must split
// as a shell would split it.
func (Linux) Check(n *topo.Node, r topo.Reporter) {
	if n.Image == "" {
		r.Errorf(n.Pos, "node %q: a %s node needs image: (a local Docker image; erlab never pulls one)", n.Name, n.Kind)
	}
	for _, f := range []struct{ key, v string }{{"cmd", n.Cmd}, {"entrypoint", n.Entrypoint}} {
		if _, err := shlex.Split(f.v); err != nil {
			r.Errorf(n.Pos, "node %q: %s: %v", n.Name, f.key, err)
		}
	}
	if n.Privileged {
		if _, lack, err := boundingCaps(); err != nil {
			r.Errorf(n.Pos, "node %q: privileged: %v", n.Name, err)
		} else if len(lack) > 0 {
			r.Warnf(n.Pos, "node %q: privileged: this host's capability bounding set lacks %s, which no container here can get (runc fails on them, as docker run --privileged does); the node gets every other capability", n.Name, strings.Join(lack, ", "))
		}
	}
	for _, b := range n.Binds {
		if src, _, ok := splitBind(b); !ok || src == "" {
			r.Errorf(n.Pos, "node %q: binds: %q: give SOURCE:TARGET[:OPTIONS]", n.Name, b)
		}
	}
	if _, _, err := publish(n.Ports); err != nil {
		r.Errorf(n.Pos, "node %q: %v", n.Name, err)
	}
	if n.Mgmt != nil {
		if i := n.Interface("eth0"); i != nil {
			r.Errorf(i.Pos, "node %q: eth0 is its management interface, on the lab's management network: name its links eth1 and up, or set network-mode: none", n.Name)
		}
	}
}

// splitBind splits SOURCE:TARGET[:OPTIONS].
func splitBind(b string) (src, rest string, ok bool) {
	for i := 0; i < len(b); i++ {
		if b[i] == ':' {
			return b[:i], b[i+1:], i+1 < len(b)
		}
	}
	return "", "", false
}

// docker is one client per process: it negotiates the API version on its
// first call.
var docker = sync.OnceValues(func() (*client.Client, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	return c, nil
})

// dockerClient returns the client, with an error that says what to do
// when no daemon answers.
func dockerClient(ctx context.Context) (*client.Client, error) {
	c, err := docker()
	if err != nil {
		return nil, err
	}
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		return nil, fmt.Errorf("no Docker daemon answers (%v): start dockerd (scripts/dockerd starts one)", err)
	}
	return c, nil
}

// MakeNamespace implements NamespaceMaker: create and start the node's
// container, then name its network namespace. Through the node's Ops, as
// docker run and ip netns attach: a recorded deploy (a plan) records it.
func (Linux) MakeNamespace(ctx context.Context, n *Node) error {
	return n.Ops.Host(runLine(n), func() error { return makeContainer(ctx, n) })
}

// runLine is what MakeNamespace amounts to as command lines.
func runLine(n *Node) string {
	s := n.Spec
	network := "none"
	if s.Mgmt != nil {
		network = s.Mgmt.MgmtNetwork(n.Lab)
	}
	line := fmt.Sprintf("docker run -d --name %s --hostname %s --network %s", n.NetNS, s.Name, network)
	for _, a := range []netip.Addr{s.MgmtIPv4, s.MgmtIPv6} {
		if a.IsValid() {
			flag := "--ip"
			if a.Is6() {
				flag = "--ip6"
			}
			line += " " + flag + " " + a.String()
		}
	}
	for _, p := range s.Ports {
		line += " -p " + p
	}
	caps := ContainerCaps
	if s.Privileged {
		caps = []string{"(the host's bounding set)"}
	}
	line += " --cap-add " + strings.Join(caps, ",") + " --label " + LabelLab + "=" + n.Lab + " --label " + LabelNode + "=" + s.Name + " " + s.Image
	if s.Cmd != "" {
		line += " " + s.Cmd
	}
	return line + "\nnetns attach " + n.NetNS + " PID"
}

// makeContainer creates and starts the node's container (or starts the
// one it has, stopped), and binds its network namespace at the node's.
func makeContainer(ctx context.Context, n *Node) error {
	c, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	s := n.Spec
	if _, err := c.ImageInspect(ctx, s.Image); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("image %q is not on this host, and erlab never pulls one: build or load it first (docker import, docker load)", s.Image)
		}
		return fmt.Errorf("image %q: %w", s.Image, err)
	}
	// A container stopped by erlab stop starts again as it was, with
	// its own filesystem, as docker start does.
	if ins, err := c.ContainerInspect(ctx, n.NetNS, client.ContainerInspectOptions{}); err == nil {
		if ins.Container.Config == nil || ins.Container.Config.Labels[LabelLab] != n.Lab || ins.Container.Config.Labels[LabelNode] != s.Name {
			return fmt.Errorf("a container named %s is there and is not this lab's node: remove it (docker rm -f %s)", n.NetNS, n.NetNS)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dockerTimeout)
		defer cancel()
		return startAndAttach(ctx, c, n, ins.Container.ID)
	}
	// Split as a shell would (checked when the file was read); empty
	// keeps the image's own.
	cmd, _ := shlex.Split(s.Cmd)
	entrypoint, _ := shlex.Split(s.Entrypoint)
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelLab], labels[LabelNode] = n.Lab, s.Name
	var env []string
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, k+"="+s.Env[k])
	}
	opts := client.ContainerCreateOptions{
		Name:   n.NetNS,
		Config: &container.Config{Image: s.Image, Cmd: cmd, Entrypoint: entrypoint, User: s.User, Env: env, Labels: labels, Hostname: s.Name},
		// Bind sources are resolved against the topology file's
		// directory when it is read. The container's /proc/sys stays
		// read-only: erlab sets the node's sysctls from outside.
		HostConfig: hostConfig(s),
	}
	limits(s, opts.Config, opts.HostConfig)
	if s.Mgmt != nil {
		if err := ensureMgmt(ctx, c, n.Lab, s.Mgmt); err != nil {
			return err
		}
		opts.HostConfig.NetworkMode = container.NetworkMode(s.Mgmt.MgmtNetwork(n.Lab))
		opts.NetworkingConfig = mgmtEndpoint(n.Lab, s)
		// Checked when the file was read.
		opts.Config.ExposedPorts, opts.HostConfig.PortBindings, _ = publish(s.Ports)
	}
	// Not cut short by a cancelled deploy: the daemon would go on and
	// make the container after the rollback had swept the lab's, and it
	// would be left behind. Made, the rollback finds it by its label.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dockerTimeout)
	defer cancel()
	var unknown []string
	res, err := c.ContainerCreate(ctx, opts)
	// A daemon older than the kernel refuses the capabilities it has no
	// name for (dockerd 20.10: PERFMON, BPF, CHECKPOINT_RESTORE): a
	// privileged node goes without them, and the log says so.
	for err != nil && s.Privileged {
		m := unknownCap.FindStringSubmatch(err.Error())
		if m == nil || !slices.Contains(opts.HostConfig.CapAdd, m[1]) {
			break
		}
		unknown = append(unknown, m[1])
		opts.HostConfig.CapAdd = slices.DeleteFunc(opts.HostConfig.CapAdd, func(c string) bool { return c == m[1] })
		res, err = c.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return fmt.Errorf("create container %s: %w", n.NetNS, err)
	}
	if len(unknown) > 0 {
		n.Log.Warn("privileged: the Docker daemon knows no such capabilities; the container goes without them", "capabilities", strings.Join(unknown, ", "))
	}
	n.Log.Debug("container created", "id", res.ID[:12], "image", s.Image)
	return startAndAttach(ctx, c, n, res.ID)
}

// dockerTimeout bounds one call to the daemon that a deploy makes.
const dockerTimeout = 2 * time.Minute

// unknownCap is dockerd's refusal of a capability it has no name for.
var unknownCap = regexp.MustCompile(`unknown capability: "CAP_([A-Z_]+)"`)

// hostConfig is how a node's container runs: no network of Docker's (or
// only the lab's management network, which MakeNamespace adds), the
// binds, and ContainerCaps — or, privileged, every capability this host's
// bounding set holds, /proc and /sys writable, no seccomp or AppArmor
// profile: docker run --privileged less what the host cannot give
// (Docker's own flag asks for all capabilities, and fails here).
func hostConfig(s *topo.Node) *container.HostConfig {
	hc := &container.HostConfig{NetworkMode: "none", CapAdd: ContainerCaps, Binds: s.Binds}
	if s.Privileged {
		have, _, _ := boundingCaps() // read when the file was checked
		hc.CapAdd = have
		hc.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined", "label=disable"}
		// What the CLI's systempaths=unconfined sends: no masked and no
		// read-only paths (an empty list overrides the defaults).
		hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
	}
	return hc
}

// startAndAttach starts a container and names its network namespace.
func startAndAttach(ctx context.Context, c *client.Client, n *Node, id string) error {
	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", n.NetNS, err)
	}
	ins, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect container %s: %w", n.NetNS, err)
	}
	st := ins.Container.State
	if st == nil || !st.Running || st.Pid == 0 {
		return fmt.Errorf("container %s is not running after its start (its command exited?): docker logs %s", n.NetNS, n.NetNS)
	}
	return kernel.NetNSAttach(n.NetNS, st.Pid)
}

// Stop implements Stopper: docker stop (SIGTERM, then SIGKILL after
// StopGrace), or docker kill.
func (Linux) Stop(ctx context.Context, n *Node, kill bool) error {
	c, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	if kill {
		_, err = c.ContainerKill(ctx, n.NetNS, client.ContainerKillOptions{Signal: "KILL"})
	} else {
		grace := int(StopGrace.Seconds())
		_, err = c.ContainerStop(ctx, n.NetNS, client.ContainerStopOptions{Timeout: &grace})
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", n.NetNS, err)
	}
	return nil
}

// StopGrace is how long a stopped container gets between SIGTERM and
// SIGKILL.
const StopGrace = 3 * time.Second

// Sweep implements Sweeper: every container labelled with the lab's name,
// removed with its anonymous volumes, running or not; then the lab's
// management network.
func (Linux) Sweep(ctx context.Context, lab string, log *slog.Logger) (int, error) {
	c, err := docker()
	if err != nil {
		return 0, err
	}
	list, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", LabelLab+"="+lab)})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return 0, nil // no daemon: no container of any lab
		}
		return 0, fmt.Errorf("list containers: %w", err)
	}
	// On as many workers as a deploy: dockerd removes containers side
	// by side, and one at a time a lab of 100 took twice as long.
	var (
		mu      sync.Mutex
		errs    []error
		removed int
		g       errgroup.Group
	)
	g.SetLimit(4 * runtime.NumCPU())
	for _, ct := range list.Items {
		if ct.Labels[LabelLab] != lab { // the filter matches the label exactly; be sure
			continue
		}
		g.Go(func() error {
			_, err := c.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove container %s: %w", ct.ID[:12], err))
				return nil
			}
			log.Info("container removed", "node", ct.Labels[LabelNode], "id", ct.ID[:12])
			removed++
			return nil
		})
	}
	g.Wait()
	if len(errs) == 0 {
		n, err := sweepNetworks(ctx, c, lab, log)
		removed += n
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

// Exec implements Execer: the command runs in the container's mount, PID
// and network namespaces, through the Docker exec API, with the caller's
// streams; its exit status is returned.
func (Linux) Exec(ctx context.Context, lab, node, netns string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c, err := dockerClient(ctx)
	if err != nil {
		return 0, err
	}
	ex, err := c.ExecCreate(ctx, netns, client.ExecCreateOptions{Cmd: argv, AttachStdin: stdin != nil, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", netns, err)
	}
	att, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", netns, err)
	}
	defer att.Close()
	if stdin != nil {
		go func() {
			io.Copy(att.Conn, stdin)
			att.CloseWrite()
		}()
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if _, err := stdcopy.StdCopy(stdout, stderr, att.Reader); err != nil && ctx.Err() == nil {
		return 0, fmt.Errorf("exec in container %s: %w", netns, err)
	}
	if ctx.Err() != nil {
		return -1, fmt.Errorf("timed out: %w", ctx.Err())
	}
	ins, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", netns, err)
	}
	return ins.ExitCode, nil
}

// Inspect implements Inspector: the container as the daemon sees it, and
// whether it still runs in the namespace bound at the node's name.
func (Linux) Inspect(ctx context.Context, n *Node) (*Runtime, error) {
	c, err := docker()
	if err != nil {
		return nil, err
	}
	res, err := c.ContainerInspect(ctx, n.NetNS, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) || client.IsErrConnectionFailed(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("inspect container %s: %w", n.NetNS, err)
	}
	ins := res.Container
	rt := &Runtime{ID: ins.ID}
	if ins.Config != nil {
		rt.Image = ins.Config.Image
	}
	if st := ins.State; st != nil {
		rt.State = string(st.Status)
		rt.Detached = !st.Running || !kernel.NetNSIsPIDs(n.NetNS, st.Pid)
	}
	if ins.NetworkSettings != nil {
		for _, ep := range ins.NetworkSettings.Networks {
			if ep == nil {
				continue
			}
			if ep.IPAddress.IsValid() {
				rt.IPv4 = fmt.Sprintf("%s/%d", ep.IPAddress, ep.IPPrefixLen)
			}
			if ep.GlobalIPv6Address.IsValid() {
				rt.IPv6 = fmt.Sprintf("%s/%d", ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen)
			}
		}
	}
	return rt, nil
}
