package lab

import (
	"context"
	"fmt"

	"github.com/erlab-dev/erlab/lab/capture"
)

// CaptureOptions say what erlab capture captures and where it goes.
type CaptureOptions = capture.Options

// Capture captures an interface of a node with tcpdump inside the node's
// namespace — to a pcap file, to a pcap stream, or as tcpdump's text — until
// Count frames were seen or ctx ends: what containerlab users do with ip
// netns exec ... tcpdump.
func (l *Lab) Capture(ctx context.Context, node string, o CaptureOptions) error {
	ns, err := l.NetNS(node)
	if err != nil {
		return err
	}
	c, err := capture.Start(ctx, ns, o)
	if err != nil {
		return fmt.Errorf("capture %s:%s: %w", node, o.Iface, err)
	}
	l.Log().Debug("capture", "node", node, "interface", o.Iface, "file", o.File)
	return c.Wait()
}
