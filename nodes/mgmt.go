package nodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/erlab-dev/erlab/lab/topo"
)

// mgmtMu serializes the making of management networks: a lab's container
// nodes start together, and the first makes its network.
var mgmtMu sync.Mutex

// ensureMgmt makes the lab's management network, a Docker bridge network
// labelled with the lab's name, unless a network of that name is there:
// one of the lab's own from an earlier start, or one the user made, which
// the lab joins as containerlab does and never removes.
func ensureMgmt(ctx context.Context, c *client.Client, lab string, m *topo.Mgmt) error {
	mgmtMu.Lock()
	defer mgmtMu.Unlock()
	name := m.MgmtNetwork(lab)
	if _, err := c.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("management network %s: %w", name, err)
	}
	ipam := &network.IPAM{}
	if m.IPv4Subnet.IsValid() {
		ipam.Config = append(ipam.Config, network.IPAMConfig{Subnet: m.IPv4Subnet, Gateway: m.IPv4Gw, IPRange: m.IPv4Range})
	}
	if m.IPv6Subnet.IsValid() {
		ipam.Config = append(ipam.Config, network.IPAMConfig{Subnet: m.IPv6Subnet, Gateway: m.IPv6Gw, IPRange: m.IPv6Range})
	}
	v6 := true
	opts := map[string]string{}
	if m.Bridge != "" {
		opts["com.docker.network.bridge.name"] = m.Bridge
	}
	if m.MTU != 0 {
		opts["com.docker.network.driver.mtu"] = strconv.Itoa(m.MTU)
	}
	_, err := c.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge", EnableIPv6: &v6, IPAM: ipam, Options: opts,
		Labels: map[string]string{LabelLab: lab},
	})
	if err != nil {
		if strings.Contains(err.Error(), "overlap") {
			return fmt.Errorf("management network %s: its subnets (%s, %s) overlap a network this host has, another lab's perhaps: set mgmt.ipv4-subnet and mgmt.ipv6-subnet, or auto (%w)", name, subnetOf(m.IPv4Subnet), subnetOf(m.IPv6Subnet), err)
		}
		return fmt.Errorf("management network %s: %w", name, err)
	}
	return nil
}

func subnetOf(p netip.Prefix) string {
	if !p.IsValid() {
		return "auto"
	}
	return p.String()
}

// mgmtEndpoint is how a node joins the management network: its addresses
// there, when the file gives them.
func mgmtEndpoint(lab string, s *topo.Node) *network.NetworkingConfig {
	ep := &network.EndpointSettings{}
	if s.MgmtIPv4.IsValid() || s.MgmtIPv6.IsValid() {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: s.MgmtIPv4, IPv6Address: s.MgmtIPv6}
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Mgmt.MgmtNetwork(lab): ep}}
}

// publish turns containerlab's ports (docker run -p forms:
// [IP:][HOSTPORT:]PORT[/PROTO], ranges too) into the ports a container
// exposes and their bindings on the host.
func publish(ports []string) (network.PortSet, network.PortMap, error) {
	set, pm := network.PortSet{}, network.PortMap{}
	for _, spec := range ports {
		maps, err := nat.ParsePortSpec(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("ports: %q: %v", spec, err)
		}
		for _, m := range maps {
			p, err := network.ParsePort(string(m.Port))
			if err != nil {
				return nil, nil, fmt.Errorf("ports: %q: %v", spec, err)
			}
			set[p] = struct{}{}
			b := network.PortBinding{HostPort: m.Binding.HostPort}
			if m.Binding.HostIP != "" {
				if b.HostIP, err = netip.ParseAddr(m.Binding.HostIP); err != nil {
					return nil, nil, fmt.Errorf("ports: %q: host address %q: %v", spec, m.Binding.HostIP, err)
				}
			}
			pm[p] = append(pm[p], b)
		}
	}
	return set, pm, nil
}

// limits sets a node's resources, extra capabilities and health check on
// its container.
func limits(s *topo.Node, cfg *container.Config, hc *container.HostConfig) {
	hc.NanoCPUs = int64(s.CPU * 1e9)
	hc.CpusetCpus = s.CPUSet
	hc.Memory = s.Memory
	hc.ShmSize = s.ShmSize
	if !s.Privileged { // privileged has every capability there is already
		for _, c := range s.CapAdd {
			if !slices.Contains(hc.CapAdd, c) {
				hc.CapAdd = append(slices.Clone(hc.CapAdd), c)
			}
		}
	}
	if d := s.DNS; d != nil {
		hc.DNS, hc.DNSSearch, hc.DNSOptions = d.Servers, d.Search, d.Options
	}
	if h := s.Healthcheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, StartPeriod: h.StartPeriod, Interval: h.Interval, Timeout: h.Timeout, Retries: h.Retries}
	}
}

// sweepNetworks removes the networks labelled with the lab's name, once
// its containers are gone. One that another lab's containers still use
// (two labs that name the same network) stays, and the log says so.
func sweepNetworks(ctx context.Context, c *client.Client, lab string, log *slog.Logger) (int, error) {
	list, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", LabelLab+"="+lab)})
	if err != nil {
		return 0, fmt.Errorf("list networks: %w", err)
	}
	var errs []error
	removed := 0
	for _, nw := range list.Items {
		if nw.Labels[LabelLab] != lab {
			continue
		}
		if _, err := c.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{}); err != nil {
			if cerrdefs.IsNotFound(err) {
				continue
			}
			if strings.Contains(err.Error(), "active endpoints") {
				log.Warn("management network left: other containers use it", "network", nw.Name)
				continue
			}
			errs = append(errs, fmt.Errorf("remove network %s: %w", nw.Name, err))
			continue
		}
		log.Info("network removed", "network", nw.Name)
		removed++
	}
	return removed, errors.Join(errs...)
}
