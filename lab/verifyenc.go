package lab

import (
	"context"
	"slices"
	"strings"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/topo"
)

// EncryptionCheck is the verdict on one link or tunnel of verify
// encryption.
type EncryptionCheck = feature.EncryptionCheck

// VerifyEncryption checks a deployed lab's encryption on the wire (see
// Lab.VerifyEncryption).
func VerifyEncryption(ctx context.Context, t *topo.Topology, only []string, opts Options) ([]EncryptionCheck, error) {
	return FromTopology(t, opts).VerifyEncryption(ctx, only)
}

// VerifyEncryption proves on the wire that what the topology declares
// encrypted is: each feature that encrypts (MACsec links, IPsec tunnels)
// checks its own. only, when given, limits the check to those targets (a
// link end NODE:IFACE, a tunnel NAME or tunnel:NAME), each asked of the
// feature that answers for it; a name no feature answers for is an error,
// with a did-you-mean, so that a typo never reads as a pass.
func (l *Lab) VerifyEncryption(ctx context.Context, only []string) ([]EncryptionCheck, error) {
	t, err := l.needTopology("verify encryption")
	if err != nil {
		return nil, err
	}
	hs := hooks[feature.EncryptionHook](&l.opts)
	owner := map[string]int{}
	var known []string
	for i, h := range hs {
		for _, name := range h.EncryptionTargets(t) {
			if _, dup := owner[name]; !dup {
				owner[name] = i
				known = append(known, name)
			}
		}
	}
	slices.SortFunc(known, topo.NaturalCompare)
	asked := make([][]string, len(hs))
	for _, o := range only {
		name := strings.TrimPrefix(o, "tunnel:")
		i, ok := owner[name]
		if !ok {
			// A node that exists: its own link ends are what was meant.
			cands := known
			if node, _, ok := strings.Cut(o, ":"); ok && t.Node(node) != nil {
				cands = slices.DeleteFunc(slices.Clone(known), func(k string) bool { return !strings.HasPrefix(k, node+":") })
			}
			return nil, &UnknownError{Lab: t.Name, What: "link end (NODE:IFACE) or tunnel", Name: o, Known: cands}
		}
		asked[i] = append(asked[i], name)
	}
	var out []EncryptionCheck
	for i, h := range hs {
		if len(only) > 0 && len(asked[i]) == 0 {
			continue
		}
		res, err := h.VerifyEncryption(ctx, l, asked[i])
		out = append(out, res...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
