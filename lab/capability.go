package lab

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Need is a kernel feature a topology needs, and where.
type Need struct {
	Feature kernel.Feature
	Where   []string // node:iface or node
}

// Needs computes the kernel features a topology needs, in kernel.AllFeatures
// order, each with the places that need it.
func Needs(t *topo.Topology) []Need {
	where := map[kernel.Feature][]string{}
	add := func(f kernel.Feature, w string) { where[f] = append(where[f], w) }
	for _, l := range t.Links {
		add(kernel.FeatVeth, l.A.String())
	}
	for _, n := range t.Nodes {
		if n.Kind == "bridge" {
			add(kernel.FeatBridge, n.Name)
			for _, i := range n.Interfaces {
				if i.Access != 0 || len(i.Trunk) > 0 {
					add(kernel.FeatBridgeVLAN, n.Name+":"+i.Name)
					if n.BridgeVLANProtocol == topo.Dot1ad {
						add(kernel.FeatQinQ, n.Name+":"+i.Name)
					}
				}
			}
		}
		for _, i := range n.Interfaces {
			if i.Type == topo.TypeMACsec {
				add(kernel.FeatMACsec, n.Name+":"+i.Name)
			}
			if i.Type == topo.TypeXfrm {
				add(kernel.FeatXfrmi, n.Name+":"+i.Name)
			}
			if i.Type != topo.TypeVLAN {
				continue
			}
			if i.VLANProtocol == topo.Dot1ad {
				add(kernel.FeatQinQ, n.Name+":"+i.Name)
			} else {
				add(kernel.FeatVLAN, n.Name+":"+i.Name)
			}
		}
	}
	for _, tu := range t.Tunnels {
		add(kernel.FeatESP, "tunnel "+tu.Name)
	}
	var needs []Need
	for _, f := range kernel.AllFeatures {
		if w, ok := where[f]; ok {
			needs = append(needs, Need{Feature: f, Where: w})
		}
	}
	return needs
}

// MissingFeaturesError says which features the running kernel lacks for a
// topology, and the way out.
type MissingFeaturesError struct {
	Kernel  string
	File    string
	Missing []Need
	Reasons map[kernel.Feature]error
}

func (e *MissingFeaturesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "this kernel (%s) lacks what the lab needs:\n", e.Kernel)
	for _, n := range e.Missing {
		where := n.Where
		more := ""
		if len(where) > 4 {
			more = fmt.Sprintf(" and %d more", len(where)-4)
			where = where[:4]
		}
		fmt.Fprintf(&b, "  %s (%s, %v), needed by %s%s\n", n.Feature, kernel.FeatureOption(n.Feature), e.Reasons[n.Feature], strings.Join(where, ", "), more)
	}
	fmt.Fprintf(&b, "run the lab in erlab's microVM, which boots Debian's kernel with these as modules:\n")
	fmt.Fprintf(&b, "  scripts/vm-run -- scripts/demo %s\n", e.File)
	fmt.Fprintf(&b, "or on a host (or the Vagrant box) whose kernel has them")
	return b.String()
}

// CheckKernel probes the running kernel for what the topology needs.
func CheckKernel(t *topo.Topology) error {
	needs := Needs(t)
	var features []kernel.Feature
	for _, n := range needs {
		features = append(features, n.Feature)
	}
	reasons, err := kernel.Probe(features)
	if err != nil {
		return err
	}
	if len(reasons) == 0 {
		return nil
	}
	e := &MissingFeaturesError{Kernel: kernelRelease(), File: t.File, Reasons: reasons}
	for _, n := range needs {
		if _, missing := reasons[n.Feature]; missing {
			e.Missing = append(e.Missing, n)
		}
	}
	return e
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
