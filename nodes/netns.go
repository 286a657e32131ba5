package nodes

import "github.com/erlab-dev/erlab/lab/topo"

// Netns is the default kind: a bare network namespace, with no daemon and
// no image. Everything it has comes from the topology: interfaces,
// addresses, routes, sysctls and exec commands.
type Netns struct{}

// Name implements Kind.
func (Netns) Name() string { return "netns" }

// Check implements Kind: container-only fields make no sense on a namespace.
func (Netns) Check(n *topo.Node, r topo.Reporter) { refuseContainerFields(n, r) }

func refuseContainerFields(n *topo.Node, r topo.Reporter) {
	for _, f := range []struct {
		name string
		set  bool
	}{{"image", n.Image != ""}, {"cmd", n.Cmd != ""}, {"entrypoint", n.Entrypoint != ""}, {"user", n.User != ""}, {"privileged", n.Privileged},
		{"binds", len(n.Binds) > 0}, {"env", len(n.Env) > 0}, {"mgmt-ipv4", n.MgmtIPv4.IsValid()}, {"mgmt-ipv6", n.MgmtIPv6.IsValid()},
		{"network-mode", n.NetworkMode != ""}, {"ports", len(n.Ports) > 0}, {"cpu", n.CPU != 0}, {"cpu-set", n.CPUSet != ""}, {"memory", n.Memory != 0},
		{"dns", n.DNS != nil}, {"healthcheck", n.Healthcheck != nil}, {"cap-add", len(n.CapAdd) > 0}, {"shm-size", n.ShmSize != 0}} {
		if f.set {
			r.Errorf(n.Pos, "node %q: %s is for container nodes; a %s node is a bare namespace", n.Name, f.name, n.Kind)
		}
	}
}
