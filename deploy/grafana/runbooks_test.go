package grafana

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestRunbookPanelsExist checks that every **Row › Panel** reference in
// docs/runbooks.md names a panel of the dashboard, so renaming a panel
// cannot silently break the runbooks.
func TestRunbookPanelsExist(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "runbooks.md"))
	if err != nil {
		t.Fatalf("read docs/runbooks.md: %v", err)
	}
	qs, err := PanelQueries()
	if err != nil {
		t.Fatal(err)
	}
	panels := map[string]bool{}
	for _, q := range qs {
		panels[q.Row+" › "+q.Panel] = true
	}
	refs := regexp.MustCompile(`\*\*([^*]+?) ›\s+([^*]+?)\*\*`).FindAllStringSubmatch(string(b), -1)
	if len(refs) < 10 {
		t.Fatalf("only %d panel references found in docs/runbooks.md", len(refs))
	}
	space := regexp.MustCompile(`\s+`)
	for _, r := range refs {
		name := space.ReplaceAllString(r[1], " ") + " › " + space.ReplaceAllString(r[2], " ")
		if !panels[name] {
			t.Errorf("docs/runbooks.md refers to panel %q, which the dashboard does not have", name)
		}
	}
}
