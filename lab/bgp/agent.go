package bgp

// The routing agent: one process per BGP node, started inside the node's
// namespace, embedding a GoBGP v4 speaker that serves GoBGP's gRPC API on
// 127.0.0.1:50051 (so the gobgp CLI works in the node), with per-peer BFD,
// and a FIB sync that writes best paths into the node's kernel. GoBGP opens
// its sockets from goroutines of its own, so one speaker per namespace
// means one process per namespace.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// ConfigEnv is the path of an agent's config.json, in its environment.
const ConfigEnv = "ERLAB_AGENT_CONFIG"

// GRPCAddress is where the agent serves GoBGP's API, inside its namespace.
const GRPCAddress = "127.0.0.1:50051"

// agentConfigFile is the agent's configuration, in its node's directory.
const agentConfigFile = "agent.json"

// AgentConfig is what deploy hands an agent.
type AgentConfig struct {
	Lab  string `json:"lab"`
	Node string `json:"node"`
	BGP  Config `json:"bgp"`
	// Dir holds the agent's status file; its log is the process's stderr.
	Dir string `json:"dir"`
}

// WriteConfig saves a config for an agent, readable by root only (it may
// hold MD5 passwords).
func WriteConfig(path string, c AgentConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func readConfig(path string) (AgentConfig, error) {
	var c AgentConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("agent config %s: %w", path, err)
	}
	return c, nil
}

// Status is what the agent's supervisor records, for inspect.
type Status struct {
	PID        int       `json:"pid"`         // the supervisor (shell)
	SpeakerPID int       `json:"speaker_pid"` // the GoBGP speaker; 0 while restarting
	Started    time.Time `json:"started"`
	Restarts   int       `json:"restarts"`
	LastExit   string    `json:"last_exit,omitempty"`
	LastExitAt time.Time `json:"last_exit_at,omitzero"`
}

// StatusPath is where an agent with this config dir keeps its status.
func StatusPath(dir string) string { return filepath.Join(dir, "agent.status.json") }

// ReadStatus reads an agent's status file.
func ReadStatus(dir string) (Status, error) {
	var s Status
	b, err := os.ReadFile(StatusPath(dir))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

func writeStatus(dir string, s Status) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := StatusPath(dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, StatusPath(dir))
}

// is6 says whether an address belongs to the IPv6 unicast family.
func is6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }
