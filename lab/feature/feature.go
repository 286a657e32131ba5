// Package feature is the engine's feature seam: the one small interface a
// feature of erlab labs implements, and the optional single-method hooks,
// found by type assertion, through which it adds to each part of erlab.
// VLAN subinterfaces, bridge VLANs, MACsec, MKA, IPsec, IKE, BGP routing
// and link impairments are each a folder under lab/ that implements these,
// plus one registration line (lab/builtin.go); the engine iterates what is
// registered and names none of them.
//
// What plugs in where:
//
//   - topology keys and their checks: the hooks of topo (KeysHook,
//     ResolveHook, InterfacesHook, ClaimHook, InterfaceHook, NodeHook,
//     TopologyHook, OverheadHook), located errors as the loader's own;
//   - the kernel features it needs, for the probe and its message:
//     KernelHook;
//   - its deploy steps, which wait for the engine's (see Step): StepsHook;
//     the devices of its interface types: DeviceHook; what it does to any
//     interface before the engine raises it: PrepareHook; interfaces and
//     routes it configures itself, later: DeferHook;
//   - what it records in the lab's state (never a key): StateHook;
//   - its section of inspect (JSON data and a titled table): InspectHook,
//     and a word on an interface in the interface table: DetailHook;
//   - its check for verify encryption: EncryptionHook;
//   - the processes the erlab binary is re-executed as: HelperHook;
//   - its words in a graph: GraphHook;
//   - its actions as drill steps (macsec-rotate, ipsec-rekey): ActionHook.
//
// Its actions (rotate, rekey) are functions of its own package that take
// a Lab; ActionHook offers them to drills.
package feature

import (
	"context"
	"io"
	"log/slog"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// Feature is a feature of erlab labs: a name (its key in the topology
// model's Ext, in the state and in inspect's JSON), and any hooks.
type Feature interface {
	topo.Extension
}

// KernelHook says which kernel features a topology needs of the feature,
// and where, for the probe deploy runs first; KernelFeatures lists all it
// may need, for erlab capabilities.
type KernelHook interface {
	KernelFeatures() []*kernel.Feature
	Needs(t *topo.Topology) []kernel.Need
}

// Deployment is what a feature's deploy steps see of the deploy.
type Deployment interface {
	Lab() string
	Topology() *topo.Topology
	// Node is a node being deployed. Its namespace exists once
	// NamespaceStep(node) is done.
	Node(name string) *nodes.Node
	// Dir is the lab's state directory (mode 0700).
	Dir() string
	Log() *slog.Logger
	// Retained says a failed deploy keeps what it made (--retain).
	Retained() bool
}

// StepsHook adds a feature's steps to a deploy.
type StepsHook interface {
	Steps(d Deployment) []Step
}

// DeviceHook makes the devices of the interfaces whose Owner is the
// feature. The engine calls it while it configures a node's interfaces,
// parents first, after the parent is up and before it sets the device's
// MTU, address and state like any other.
type DeviceHook interface {
	MakeDevice(ctx context.Context, n *nodes.Node, i *topo.Interface) error
}

// PrepareHook acts on any interface before the engine configures and
// raises it (MACsec turns IPv6 off on what it sits on, so that nothing
// leaves it in clear).
type PrepareHook interface {
	PrepareInterface(ctx context.Context, n *nodes.Node, i *topo.Interface) error
}

// DeferHook claims interfaces and routes that the feature configures
// itself, later (MKA's keeper, once wpa_supplicant has adopted the MACsec
// device): the engine leaves them alone and does not wait for them.
type DeferHook interface {
	DefersInterface(n *topo.Node, i *topo.Interface) bool
	DefersRoute(n *topo.Node, r topo.Route) bool
}

// StateHook records what the feature needs later of a node (inspect reads
// it when the topology file is gone): any JSON value, never a key.
type StateHook interface {
	State(t *topo.Topology, node string) any
}

// Lab is a deployed lab as features see it: for inspect, verify and their
// actions.
type Lab interface {
	Name() string
	// Topology is the lab's topology, nil when its file is gone.
	Topology() *topo.Topology
	// Dir is the lab's state directory; NodeDir a node's directory in it.
	Dir() string
	NodeDir(node string) string
	// NetNS is a node's namespace; an error names the nodes there are.
	NetNS(node string) (string, error)
	// Nodes lists the lab's nodes, as its state records them.
	Nodes() []string
	// Stopped says erlab stop stopped the node (it has no namespace until
	// erlab start).
	Stopped(node string) bool
	// Links lists a node's interfaces as the kernel has them (ip -d link
	// show): during inspect, what the engine read for its own table.
	Links(node string) ([]netlink.Link, error)
	// State decodes what the feature recorded of a node (StateHook) into
	// v; false when it recorded nothing.
	State(feature, node string, v any) bool
	Log() *slog.Logger
	Status() Status
	// Exec runs argv inside a node and returns its exit status.
	Exec(ctx context.Context, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	// Record notes in the lab's journal what erlab did to it (a drill's
	// step, an action), for erlab events.
	Record(Event)
}

// Section is a feature's part of inspect: Data for JSON (under the
// feature's name), and a table titled by its header's first column.
type Section struct {
	Header []string
	Rows   [][]string
	Data   any
}

// InspectHook reads the feature's section of a deployed lab from the
// kernel and the feature's own processes; nil when it has nothing there.
type InspectHook interface {
	Inspect(ctx context.Context, l Lab) (*Section, error)
}

// DetailHook says, for the interface table of inspect, what an interface
// of the feature's is ("802.1Q 100 on eth1"): byIndex names the node's
// interfaces by index. ok is false for interfaces not its own.
type DetailHook interface {
	Detail(l netlink.Link, byIndex map[int]string) (string, bool)
}

// GraphHook says what a graph shows of an interface of the feature's
// stacked on a link end ("vlan 100", "macsec0"); ok false for others.
type GraphHook interface {
	GraphLabel(n *topo.Node, i *topo.Interface) (string, bool)
}

// ViewHook offers a feature's own drawings of a topology to erlab graph
// (--view NAME), beside the nodes-and-links graph: the ExpressRoute model's
// circuits. Formats are graph's (mermaid, dot).
type ViewHook interface {
	Views() []string
	DrawView(w io.Writer, t *topo.Topology, view, format string) error
}

// OverlayHook names what of a feature's rides over the lab's links between
// two nodes (an IPsec tunnel), for a page to draw beside them.
type OverlayHook interface {
	Overlays(t *topo.Topology) []Overlay
}

// Overlay is one such object: its name, its kind (ipsec), the nodes at its
// ends, and a label for people.
type Overlay struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	A     string `json:"a"`
	B     string `json:"b"`
	Label string `json:"label"`
}

// EncryptionHook is a feature's part of verify encryption: the targets it
// answers for (names a user may give), and the check of those asked (all
// of its own when only is empty).
type EncryptionHook interface {
	EncryptionTargets(t *topo.Topology) []string
	VerifyEncryption(ctx context.Context, l Lab, only []string) ([]EncryptionCheck, error)
}

// ActionHook offers a feature's actions to drill steps. The feature
// declares each as a key of topo.ScopeAction (a step's do: map, such as
// macsec-rotate: NODE:IFACE); CheckAction resolves one when the file is
// read, reporting its problems at spec's position with where (the step)
// in front, and returns what Act gets when the step runs. Act does it and
// returns what it did, in a few words for the drill's report, and how to
// put it back when the drill ends (nil when the lab needs nothing put
// back: rotated keys stay rotated, and work).
type ActionHook interface {
	CheckAction(t *topo.Topology, key string, spec topo.Spec, where string, r topo.Reporter) (any, bool)
	Act(ctx context.Context, l Lab, key string, v any) (what string, undo func(context.Context) error, err error)
}

// RestartHook puts right, once a stopped node has started again, what
// its restart left wrong beyond it: a static-key peer whose replay
// window still expects the old sequence numbers. The node's
// own steps have run again by then, as at deploy.
type RestartHook interface {
	NodeStarted(ctx context.Context, l Lab, node string) error
}

// HelperHook names the processes the erlab binary may be re-executed as
// for the feature (a routing agent, an MKA keeper): the name is what
// ERLAB_HELPER says; run does the work and returns the exit status.
type HelperHook interface {
	Helpers() map[string]func() int
}

// EncryptionCheck is the verdict on one link or tunnel of verify
// encryption, with its evidence.
type EncryptionCheck struct {
	Link     string `json:"link"`     // a:ifa <-> b:ifb, or tunnel NAME (a — b)
	Declared string `json:"declared"` // macsec CIPHER, ipsec ALG (keying), or plaintext
	Checked  bool   `json:"checked"`  // false: declared plaintext and not asked for
	Pass     bool   `json:"pass"`
	Reason   string `json:"reason"`
	// Evidence.
	Sent         int    `json:"sent"`          // marker packets sent across
	Frames       int    `json:"frames"`        // frames captured
	MACsecFrames int    `json:"macsec_frames"` // of them, 0x88E5 with the sender's SCI
	ClearFrames  int    `json:"clear_frames"`  // of them, neither protected nor key agreement
	MarkerHits   int    `json:"marker_hits"`   // frames holding the marker in clear
	SenderSCI    string `json:"sender_sci,omitempty"`
	EncryptedOut uint64 `json:"encrypted_out"` // sender's protected-out counter, during the flow
	ValidatedIn  uint64 `json:"validated_in"`  // receiver's validated-in counter, during the flow
	Capture      string `json:"capture,omitempty"`
	// IPsec tunnels: ESP packets of the flow with the SA's SPI, the SPI,
	// and the layers found (ESP, or ESP inside MACsec).
	ESPPackets int    `json:"esp_packets,omitempty"`
	SPI        string `json:"spi,omitempty"`
	Layers     string `json:"layers,omitempty"`
}
