package lab

import (
	"fmt"
	"os"
	"sort"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/supervise"
)

// HelperEnv names the helper a binary is re-executed as (an agent, a
// keeper): set, the binary is that helper (see MaybeRunHelper).
const HelperEnv = "ERLAB_HELPER"

// MaybeRunHelper makes the calling binary the helper that ERLAB_HELPER
// names — erlab's process supervisor, or one a feature registered
// (feature.HelperHook) — and exits with
// its status; it returns at once when ERLAB_HELPER is unset. The one
// re-exec dispatch: erlab's main, and the test binaries that deploy labs,
// call it first, so that whichever binary deploys a lab can also be its
// helpers.
func MaybeRunHelper(opts Options) {
	name := os.Getenv(HelperEnv)
	if name == "" {
		return
	}
	helpers := map[string]func() int{supervise.HelperName: supervise.Run}
	for _, h := range hooks[feature.HelperHook](&opts) {
		for n, run := range h.Helpers() {
			helpers[n] = run
		}
	}
	run, ok := helpers[name]
	if !ok {
		var names []string
		for n := range helpers {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "erlab: %s=%s names no helper (there are: %v)\n", HelperEnv, name, names)
		os.Exit(2)
	}
	os.Exit(run())
}
