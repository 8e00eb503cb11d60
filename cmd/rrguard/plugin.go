package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
)

// The names the one binary answers to. Installed (or linked) as kubectl-rrguard on the PATH,
// it is kubectl's plugin: `kubectl rrguard sessions --node worker-7`. kubectl (1.26 and later)
// completes a plugin's arguments by running kubectl_complete-rrguard with them, which is
// cobra's __complete under that name.
const (
	pluginName     = "kubectl-rrguard"
	completionName = "kubectl_complete-rrguard"
)

// invokedAs is the name the binary was started as.
var invokedAs = filepath.Base(os.Args[0])

// commandLine is the command line rrguard runs for the arguments it was started with.
func commandLine(name string, args []string) []string {
	if strings.TrimSuffix(name, ".exe") == completionName {
		return append([]string{cobra.ShellCompRequestCmd}, args...)
	}
	return args
}

// asPlugin reports whether the binary runs as kubectl's plugin (or its completion).
func asPlugin(name string) bool {
	name = strings.TrimSuffix(name, ".exe")
	return name == pluginName || name == completionName
}

// kubectlConventions gives every command that reads a cluster kubectl's own conventions:
// --kubeconfig (else $KUBECONFIG, else ~/.kube/config) and --context, which they have, and
// -n/--namespace, which kubectl users type out of habit and kubectl itself accepts for
// cluster-scoped objects: rrguard reads only those, so it changes nothing there. It also
// completes --context from the kubeconfig and --node from the nodes the command would read.
// As the plugin, usage and examples say `kubectl rrguard`.
func kubectlConventions(root *cobra.Command, name string) {
	if asPlugin(name) {
		if root.Annotations == nil {
			root.Annotations = map[string]string{}
		}
		root.Annotations[cobra.CommandDisplayNameAnnotation] = "kubectl rrguard"
	}
	plugin := asPlugin(name)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if plugin {
			c.Example = strings.ReplaceAll(c.Example, "  rrguard ", "  kubectl rrguard ")
		}
		f := c.Flags()
		if f.Lookup("context") == nil || f.Lookup("kubeconfig") == nil {
			return
		}
		if f.Lookup("namespace") == nil && f.ShorthandLookup("n") == nil {
			f.StringP("namespace", "n", "", "accepted as kubectl accepts it for cluster-scoped objects: what rrguard reads has no namespace")
		}
		_ = c.RegisterFlagCompletionFunc("context", completeContexts)
		if f.Lookup("node") != nil {
			_ = c.RegisterFlagCompletionFunc("node", completeNodes)
		}
	}
	walk(root)
}

// completeContexts lists the contexts of the kubeconfig the command would read.
func completeContexts(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath, _ = cmd.Flags().GetString("kubeconfig")
	cfg, err := rules.Load()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for n := range cfg.Contexts {
		if strings.HasPrefix(n, toComplete) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeNodes lists the nodes of the manifests (-f) or of the cluster the command would read.
func completeNodes(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	files, _ := cmd.Flags().GetStringArray("file")
	kubeconfig, _ := cmd.Flags().GetString("kubeconfig")
	kubeContext, _ := cmd.Flags().GetString("context")
	snap, err := loadSnapshot(cmd, files, kubeconfig, kubeContext, true)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, n := range snap.Topology.Nodes {
		if strings.HasPrefix(n.Name, toComplete) {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), cobra.ShellCompDirectiveNoFileComp
}
