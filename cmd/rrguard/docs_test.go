package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// A docCommand is an rrguard command line a page shows.
type docCommand struct {
	where string // file:line
	args  []string
}

// docCommandLines returns the rrguard command lines of a Markdown page's code blocks: shell
// lines (`rrguard …`, `bin/rrguard …`, `kubectl rrguard …`, also within a YAML value such
// as a workflow's run), container commands ([/rrguard, validate, …]) and pre-commit hooks of
// this repository (the hook's entry with its args).
func docCommandLines(t *testing.T, path string, hookEntry []string) []docCommand {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []docCommand
	var block []string
	var lang string
	start, in := 0, false
	for i, line := range strings.Split(string(raw), "\n") {
		fence := strings.HasPrefix(line, "```") || strings.HasPrefix(line, " ```") || strings.HasPrefix(line, "  ```") || strings.HasPrefix(line, "   ```")
		switch {
		case fence && !in:
			in, lang, start, block = true, strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "`")), i+2, nil
		case fence && in:
			in = false
			where := func(j int) string { return filepath.Base(path) + ":" + strconv.Itoa(start+j) }
			if lang == "text" {
				continue // output (make bench-compare's, for one), not commands
			}
			// A block with prompts is a session: its commands are the prompted lines.
			if lang == "yaml" {
				out = append(out, yamlCommands(t, where(0), strings.Join(block, "\n"), hookEntry)...)
				continue
			}
			prompted := slices.ContainsFunc(block, func(l string) bool { return strings.HasPrefix(l, "$ ") })
			for j, l := range block {
				if prompted {
					var ok bool
					if l, ok = strings.CutPrefix(l, "$ "); !ok {
						continue
					}
				}
				for _, part := range strings.FieldsFunc(strings.ReplaceAll(l, "&&", ";"), func(r rune) bool { return r == ';' }) {
					if args := shellCommand(part); args != nil {
						out = append(out, docCommand{where(j), args})
					}
				}
			}
		case in:
			block = append(block, line)
		}
	}
	return out
}

// rrguardNames are the words that run rrguard on a shell line: the binary as built, in the
// image, as kubectl's plugin (kubectl rrguard, kubectl-rrguard).
var rrguardNames = []string{"rrguard", "bin/rrguard", "./bin/rrguard", "/rrguard", "kubectl-rrguard"}

// shellCommand returns the arguments of the rrguard command a shell command runs, nil if it
// runs another: the words after rrguard (after variable assignments; kubectl rrguard too) up
// to a redirection, pipe or comment.
func shellCommand(command string) []string {
	words := shellWords(command)
	i := 0
	for i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-") {
		i++
	}
	if i+1 < len(words) && words[i] == "kubectl" && words[i+1] == "rrguard" {
		i++
	}
	if i+1 >= len(words) || !slices.Contains(rrguardNames, words[i]) {
		return nil
	}
	return words[i+1:]
}

// shellWords splits a shell line into words, honouring quotes, and stops at a comment, a
// redirection, a pipe or a command separator.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	have := false
	quote := rune(0)
	flush := func() {
		if have {
			words = append(words, cur.String())
		}
		cur.Reset()
		have = false
	}
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, have = r, true
		case r == ' ' || r == '\t':
			flush()
		case r == '#' && !have, r == '>', r == '|', r == ';', r == '&', r == '<':
			flush()
			return words
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	flush()
	return words
}

// yamlCommands returns the rrguard commands of YAML documents: in shell scripts (a workflow's
// run), container commands, and pre-commit hooks.
func yamlCommands(t *testing.T, where, text string, hookEntry []string) []docCommand {
	var out []docCommand
	for _, doc := range strings.Split(text, "\n---\n") {
		var v any
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			t.Errorf("%s: YAML that does not parse: %v", where, err)
			continue
		}
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if v["id"] == "rrguard-validate" {
					args := append(slices.Clone(hookEntry[1:]), asStrings(v["args"])...)
					out = append(out, docCommand{where + " (pre-commit hook)", args})
				}
				cmd := asStrings(v["command"])
				if len(cmd) > 1 && filepath.Base(cmd[0]) == "rrguard" {
					out = append(out, docCommand{where + " (container command)", append(cmd[1:], asStrings(v["args"])...)})
				}
				for _, x := range v {
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			case string:
				for _, line := range strings.Split(v, "\n") {
					if args := shellCommand(line); args != nil {
						out = append(out, docCommand{where + " (script)", args})
					}
				}
			}
		}
		walk(v)
	}
	return out
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestDocCommandLines: every rrguard command line of the pages users copy from parses with
// the CLI's own flags (a command that exists, flags it has, arguments it takes, an -o it
// writes), so that the examples cannot drift from the CLI. docs/ci.md's and the pre-commit
// hook's are all checked; the README and the other pages' too.
func TestDocCommandLines(t *testing.T) {
	root := filepath.Join("..", "..")
	var hooks []struct {
		ID    string `json:"id"`
		Entry string `json:"entry"`
	}
	raw, err := os.ReadFile(filepath.Join(root, ".pre-commit-hooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &hooks); err != nil || len(hooks) != 1 || hooks[0].ID != "rrguard-validate" {
		t.Fatalf(".pre-commit-hooks.yaml: %v %+v", err, hooks)
	}
	entry := strings.Fields(hooks[0].Entry)
	if entry[0] != "rrguard" {
		t.Fatalf(".pre-commit-hooks.yaml: entry %q does not run rrguard", hooks[0].Entry)
	}
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(root, "README.md"))
	seen := map[string]int{}
	for _, page := range pages {
		commands := docCommandLines(t, page, entry)
		t.Logf("%s: %d rrguard command lines", filepath.Base(page), len(commands))
		for _, c := range commands {
			if err := parseCommandLine(c.args); err != nil {
				t.Errorf("%s: rrguard %s: %v", c.where, strings.Join(c.args, " "), err)
			}
			if filepath.Base(page) == "ci.md" {
				seen[strings.Join(c.args[:min(2, len(c.args))], " ")]++
			}
		}
	}
	for _, want := range []string{"validate --live", "validate --context", "diff -f", "diff --context", "validate -q"} {
		if seen[want] == 0 {
			t.Errorf("docs/ci.md: no command line starting rrguard %s (found %v)", want, seen)
		}
	}
}

// parseCommandLine parses args with the CLI's commands and flags, without running them.
func parseCommandLine(args []string) error {
	rootCmd := newRoot(nil, io.Discard, io.Discard)
	cmd, rest, err := rootCmd.Find(args)
	if err != nil {
		return err
	}
	if cmd == rootCmd {
		return errUnknownCommand(args[0])
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return err
	}
	if f := cmd.Flags().Lookup("output"); f != nil {
		_, formats, listed := strings.Cut(f.Usage, "output format: ")
		if listed && !slices.Contains(strings.Split(formats, "|"), f.Value.String()) {
			return errFormat(f.Value.String(), formats)
		}
	}
	return nil
}

type docError string

func (e docError) Error() string { return string(e) }

func errUnknownCommand(name string) error { return docError("no command " + name) }

func errFormat(got, formats string) error {
	return docError("-o " + got + " is not one of " + formats)
}

// TestShellWords: the splitter reads quotes, and stops where the shell would hand on.
func TestShellWords(t *testing.T) {
	for line, want := range map[string][]string{
		`rrguard validate --live -f calico/ -o sarif > rrguard.sarif`:    {"rrguard", "validate", "--live", "-f", "calico/", "-o", "sarif"},
		`go install "github.com/rrguard/rrguard/cmd/rrguard@${V}"`:       {"go", "install", "github.com/rrguard/rrguard/cmd/rrguard@${V}"},
		`bin/rrguard graph -f 'my calico/' | dot -Tpng  # a picture`:     {"bin/rrguard", "graph", "-f", "my calico/"},
		`kubectl rrguard sessions --node worker-7 # its BGP sessions`:    {"kubectl", "rrguard", "sessions", "--node", "worker-7"},
		`rrguard diff -f calico/ -q >> "$GITHUB_STEP_SUMMARY"`:           {"rrguard", "diff", "-f", "calico/", "-q"},
		`printf '%s' "$KUBECONFIG_DATA" > "$RUNNER_TEMP/kubeconfig"`:     {"printf", "%s", "$KUBECONFIG_DATA"},
		`rrguard validate -f a.yaml; rrguard validate -f b.yaml`:         {"rrguard", "validate", "-f", "a.yaml"},
		`rrguard validate -f "" `:                                        {"rrguard", "validate", "-f", ""},
		`echo '` + "```" + `' >> "$GITHUB_STEP_SUMMARY"`:                 {"echo", "```"},
		`tar -xzf kubectl-rrguard_v0.1.0_linux_amd64.tar.gz -C ~/.local`: {"tar", "-xzf", "kubectl-rrguard_v0.1.0_linux_amd64.tar.gz", "-C", "~/.local"},
	} {
		if got := shellWords(line); !slices.Equal(got, want) {
			t.Errorf("%s\n  got  %q\n  want %q", line, got, want)
		}
	}
	if args := shellCommand("go install github.com/rrguard/rrguard/cmd/rrguard@v0.1.0"); args != nil {
		t.Errorf("go install named as an rrguard command: %q", args)
	}
	for command, want := range map[string][]string{
		"kubectl rrguard sessions --node worker-7":              {"sessions", "--node", "worker-7"},
		"KUBECONFIG=k rrguard audit -o json":                    {"audit", "-o", "json"},
		"helm install rrguard charts/rrguard -n rrguard-system": nil,
		"12 steps, each judged by rrguard as the webhook would": nil,
	} {
		if got := shellCommand(command); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", command, got, want)
		}
	}
}

// TestDocTypoExample: the label-typo session the README and docs/cli.md show is what
// rrguard prints for the seed with that typo, line for line.
func TestDocTypoExample(t *testing.T) {
	dir := copySeed(t, map[string][2]string{"peer.yaml": {`peerSelector: "has(route-reflector)"`, `peerSelector: "has(router-reflector)"`}})
	code, out, errOut := runCLI(t, "", "validate", "-f", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	const prompt = "$ bin/rrguard validate -f my-copy-of-seed/\n"
	for _, page := range []string{"README.md", "docs/cli.md"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", page))
		if err != nil {
			t.Fatal(err)
		}
		_, shown, ok := strings.Cut(string(raw), prompt)
		shown, _, _ = strings.Cut(shown, "```")
		if !ok {
			t.Errorf("%s: no %q session", page, strings.TrimSpace(prompt))
			continue
		}
		if shown != out {
			t.Errorf("%s shows:\n%s\nrrguard prints:\n%s", page, shown, out)
		}
	}
}
