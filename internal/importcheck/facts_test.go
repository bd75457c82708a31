package importcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPlansReadByFacts: outside the planner and the engine, no code asserts
// or switches on the concrete type of a plan's primitive (*engine.Route,
// *engine.Passthrough, ...) or compares an EXPLAIN row's Operator with a
// name: what the proxy needs to know of a plan is a field of
// engine.Facts, which the planner computes (docs/architecture.md).
func TestPlansReadByFacts(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	own := func(rel string) bool {
		for _, dir := range []string{"shardproxy/engine", "shardproxy/planner"} {
			if rel == dir || strings.HasPrefix(rel, dir+"/") {
				return true
			}
		}
		return false
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if own(rel) || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "examples" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		name := engineName(f)
		if name == "" {
			return nil
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			var types []ast.Expr
			switch n := n.(type) {
			case *ast.TypeAssertExpr:
				types = append(types, n.Type)
			case *ast.TypeSwitchStmt:
				for _, c := range n.Body.List {
					types = append(types, c.(*ast.CaseClause).List...)
				}
			case *ast.BinaryExpr:
				if n.Op != token.EQL && n.Op != token.NEQ {
					break
				}
				// An EXPLAIN operator is a string ("Route"); the
				// parser's Operator fields are typed constants.
				lit := func(e ast.Expr) bool {
					b, ok := e.(*ast.BasicLit)
					return ok && b.Kind == token.STRING
				}
				for _, side := range []ast.Expr{n.X, n.Y} {
					if sel, ok := side.(*ast.SelectorExpr); ok && sel.Sel.Name == "Operator" && (lit(n.X) || lit(n.Y)) {
						t.Errorf("%s: compares a plan's EXPLAIN operator: read engine.Facts instead", fset.Position(n.Pos()))
					}
				}
			}
			for _, typ := range types {
				if star, ok := typ.(*ast.StarExpr); ok {
					if sel, ok := star.X.(*ast.SelectorExpr); ok {
						if id, ok := sel.X.(*ast.Ident); ok && id.Name == name {
							t.Errorf("%s: looks at a plan by its type *%s.%s: read engine.Facts instead", fset.Position(typ.Pos()), name, sel.Sel.Name)
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no file outside the planner and the engine imports the engine: the walk is wrong")
	}
}

// engineName is the name file f imports the engine under, "" if it does
// not.
func engineName(f *ast.File) string {
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if path != module+"/shardproxy/engine" {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return "engine"
	}
	return ""
}
