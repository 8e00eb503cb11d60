package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// commit is stamped by the build (-ldflags "-X main.commit=..."); without it the Go toolchain's
// VCS stamp is used where there is one.
var commit = ""

// calicoVersion is the Calico release whose calico-node rrguard models: confd's sessions, its
// selectors and validation, BIRD 1.6's route reflection. The calico and api modules of go.mod
// are that release's (TestCalicoVersionIsThePinnedModule).
const calicoVersion = "v3.31.0"

// buildInfo is what `rrguard version` prints.
type buildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Calico   string `json:"calico"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Calico: calicoVersion, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if b.Commit == "" {
		b.Commit = "unknown"
		if info, ok := debug.ReadBuildInfo(); ok {
			modified := false
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					b.Commit = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if modified && b.Commit != "unknown" {
				b.Commit += "-dirty"
			}
		}
	}
	return b
}

func newVersion() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print rrguard's version, commit and the Calico version it models",
		Example: `  rrguard version
  rrguard version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, []string{"text", "json"}); err != nil {
				return err
			}
			b := currentBuild()
			w := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			}
			_, err := fmt.Fprintf(w, "rrguard %s\ncommit:   %s\nmodels:   Calico %s\ngo:       %s %s\n", b.Version, b.Commit, b.Calico, b.Go, b.Platform)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text|json")
	return cmd
}
