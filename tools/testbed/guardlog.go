package testbed

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Events returns imdsguard's JSON log lines (slog's JSON handler on stderr)
// decoded, skipping lines that are not JSON objects.
func (g *Guard) Events() []map[string]any {
	var events []map[string]any
	for _, line := range strings.Split(g.Stderr(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil {
			events = append(events, ev)
		}
	}
	return events
}

// Reload rewrites the configuration file with cfg and sends SIGHUP. Start
// from g.Config (it holds the defaults StartGuard filled in); the port cannot
// change. The caller checks the effect (WaitFor).
func (g *Guard) Reload(cfg GuardConfig) error {
	if cfg.Port != g.Config.Port {
		return fmt.Errorf("reload imdsguard: port %d -> %d: the listener stays", g.Config.Port, cfg.Port)
	}
	if err := os.WriteFile(g.ConfigPath, []byte(cfg.YAML()), 0o644); err != nil {
		return fmt.Errorf("reload imdsguard: %w", err)
	}
	g.Config = cfg
	return g.Signal(syscall.SIGHUP)
}
