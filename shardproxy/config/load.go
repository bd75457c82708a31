package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Load reads a YAML file over DefaultConfig and validates it. Every error
// names the file, the line when it can, the field and the reason, e.g.
// "proxy.yaml:12: shards[1].primary: "db1" is not host:port".
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, src)
}

// Parse is Load for a file already read; name is used in errors.
func Parse(name string, src []byte) (*Config, error) {
	c := DefaultConfig()
	if err := yaml.UnmarshalWithOptions(src, c, yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(name, src, err)
	}
	if err := c.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.File = name
			fe.Line = lineOf(src, fe.Field)
		}
		return nil, err
	}
	return c, nil
}

// yamlError turns the decoder's error into one line: file:line: reason.
func yamlError(name string, src []byte, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		return &FieldError{File: name, Line: ye.GetToken().Position.Line, Field: "yaml", Reason: firstLine(ye.GetMessage())}
	}
	// Some decode errors (a bad duration) carry no position: find the line
	// holding the quoted value they name.
	line := 0
	if m := quoted.FindStringSubmatch(err.Error()); m != nil {
		for i, l := range strings.Split(string(src), "\n") {
			if strings.Contains(l, m[1]) {
				line = i + 1
				break
			}
		}
	}
	return &FieldError{File: name, Line: line, Field: "yaml", Reason: firstLine(err.Error())}
}

var quoted = regexp.MustCompile(`"([^"]+)"`)

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// lineOf finds the line of a field path such as databases.demo.tables.t.kind
// or shards[1].primary, or of its nearest ancestor present in the file.
func lineOf(src []byte, field string) int {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return 0
	}
	parts := splitPath(field)
	for n := len(parts); n > 0; n-- {
		if line := findLine(f, parts[:n]); line > 0 {
			return line
		}
	}
	return 0
}

// splitPath splits a.b[1].c into a, b, [1], c.
func splitPath(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, ".") {
		for {
			i := strings.IndexByte(seg, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				out = append(out, seg[:i])
			}
			j := strings.IndexByte(seg, ']')
			if j < i {
				break
			}
			out = append(out, seg[i:j+1])
			seg = seg[j+1:]
		}
		if seg != "" {
			out = append(out, seg)
		}
	}
	return out
}

func findLine(f *ast.File, parts []string) int {
	if len(f.Docs) == 0 {
		return 0
	}
	node := f.Docs[0].Body
	var tok int
	for _, p := range parts {
		node, tok = child(node, p)
		if node == nil && tok == 0 {
			return 0
		}
	}
	if tok > 0 {
		return tok
	}
	if node != nil && node.GetToken() != nil {
		return node.GetToken().Position.Line
	}
	return 0
}

// child steps into a mapping key or a sequence index and returns the value
// node and the line of its key (0 for sequence items).
func child(n ast.Node, part string) (ast.Node, int) {
	if n == nil {
		return nil, 0
	}
	if strings.HasPrefix(part, "[") {
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			return nil, 0
		}
		i := atoi(strings.Trim(part, "[]"))
		if i < 0 || i >= len(seq.Values) {
			return nil, 0
		}
		v := seq.Values[i]
		return v, v.GetToken().Position.Line
	}
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		return nil, 0
	}
	for _, mv := range values {
		if mv.Key != nil && strings.Trim(mv.Key.String(), `"'`) == part {
			return mv.Value, mv.Key.GetToken().Position.Line
		}
	}
	return nil, 0
}
