package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads a YAML file over DefaultConfig and validates it. Every error
// names the file, the line when it can, the field and the reason, e.g.
// "proxy.yaml:12: shards[1].primary: "db1" is not host:port".
//
// Each adjust function runs on the decoded configuration before it is
// validated: a command fills in what it provides itself (`strata up` the
// TLS directory in its data directory).
func Load(path string, adjust ...func(*Config)) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, src, adjust...)
}

// Parse is Load for a file already read; name is used in errors.
//
// Any valid YAML 1.2 form is read: block and flow collections nested in any
// order (shards: [{name: s0, primary: 127.0.0.1:23306}]), anchors, aliases
// and merge keys, tags, quoted and block scalars, JSON. The file is parsed
// once into a node tree (go.yaml.in/yaml/v3, the reference parser's port)
// and checked against the Config structure before it is decoded, so an
// unknown key or a value of the wrong type is reported with its path.
func Parse(name string, src []byte, adjust ...func(*Config)) (*Config, error) {
	c := DefaultConfig()
	doc, err := parseDoc(src)
	if err != nil {
		return nil, syntaxError(name, err)
	}
	if doc != nil {
		budget := maxNodes
		if fe := check(doc, reflect.TypeOf(c).Elem(), "", &budget); fe != nil {
			fe.File = name
			return nil, fe
		}
		if err := doc.Decode(c); err != nil {
			return nil, syntaxError(name, err)
		}
	}
	for _, f := range adjust {
		f(c)
	}
	if err := c.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.File = name
			fe.Line = lineOf(doc, fe.Field)
		}
		return nil, err
	}
	return c, nil
}

// parseDoc returns the file's one document's root node, nil for an empty
// file. A second document is refused: which one was meant is not clear.
func parseDoc(src []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(yaml12.ReplaceAllString(string(src), "%YAML 1.1$1")))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, fmt.Errorf("yaml: line %d: a second YAML document (after ---): the file holds one", next.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// yaml12 matches a %YAML 1.2 directive, which the parser refuses (it knows
// only 1.1's): the two read a configuration file the same way.
var yaml12 = regexp.MustCompile(`(?m)^%YAML 1\.2([ \t]|$)`)

var yamlLine = regexp.MustCompile(`line (\d+): `)

// syntaxError turns the parser's error into one line: file:line: yaml: reason.
func syntaxError(name string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(firstLine(msg), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		line, _ = strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[0]] + msg[m[1]:]
	}
	return &FieldError{File: name, Line: line, Field: "yaml", Reason: msg}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// maxNodes bounds the values check visits, aliases expanded.
const maxNodes = 1 << 20

// check walks the node tree along the Go type it will be decoded into and
// reports the first key that names no field and the first value that does
// not fit its field, with the field's path and line.
func check(n *yaml.Node, t reflect.Type, path string, budget *int) *FieldError {
	n = deref(n)
	// Aliases make a small file a large tree (each *a walks a's whole
	// value again): past maxNodes values the file is refused, not walked
	// for hours.
	if *budget--; *budget < 0 {
		return &FieldError{Line: n.Line, Field: path, Reason: fmt.Sprintf("the file expands to over %d values through its aliases", maxNodes)}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return typeErr(n, path, "a mapping of "+strings.Join(fieldNames(t), ", "))
		}
		return eachPair(n, path, func(k, v *yaml.Node, p string) *FieldError {
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				return &FieldError{Line: k.Line, Field: p, Reason: "unknown field (known: " + strings.Join(fieldNames(t), ", ") + ")"}
			}
			return check(v, f.Type, p, budget)
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return typeErr(n, path, "a mapping")
		}
		return eachPair(n, path, func(_, v *yaml.Node, p string) *FieldError {
			return check(v, t.Elem(), p, budget)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return typeErr(n, path, "a list")
		}
		for i, e := range n.Content {
			if fe := check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), budget); fe != nil {
				return fe
			}
		}
		return nil
	default:
		if n.Kind != yaml.ScalarNode {
			return typeErr(n, path, "a single value")
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			reason := "cannot read " + strconv.Quote(n.Value)
			switch t.Kind() {
			case reflect.Bool:
				reason += ": want true or false"
			case reflect.Int64:
				if t.String() == "time.Duration" {
					reason += ": want a duration such as 500ms, 10s or 1m"
					break
				}
				reason += ": want an integer"
			case reflect.Int, reflect.Uint64, reflect.Uint32, reflect.Int32:
				reason += ": want an integer"
			}
			return &FieldError{Line: n.Line, Field: path, Reason: reason}
		}
		return nil
	}
}

// eachPair calls fn for each key and value of a mapping, merge keys (<<)
// included, with the value's path.
func eachPair(n *yaml.Node, path string, fn func(k, v *yaml.Node, p string) *FieldError) *FieldError {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			v = deref(v)
			var srcs []*yaml.Node
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			} else {
				srcs = []*yaml.Node{v}
			}
			for _, s := range srcs {
				if s = deref(s); s.Kind == yaml.MappingNode {
					if fe := eachPair(s, path, fn); fe != nil {
						return fe
					}
				}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return &FieldError{Line: k.Line, Field: path, Reason: "a key must be a single value"}
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if fe := fn(k, v, p); fe != nil {
			return fe
		}
	}
	return nil
}

func typeErr(n *yaml.Node, path, want string) *FieldError {
	got := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: strconv.Quote(n.Value)}[n.Kind]
	return &FieldError{Line: n.Line, Field: path, Reason: fmt.Sprintf("got %s, want %s", got, want)}
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && yamlName(f) != "-" {
			out = append(out, yamlName(f))
		}
	}
	sort.Strings(out)
	return out
}

// lineOf finds the line of a field path such as databases.demo.tables.t.kind
// or shards[1].primary, or of its nearest ancestor present in the file.
func lineOf(root *yaml.Node, field string) int {
	if root == nil {
		return 0
	}
	parts := splitPath(field)
	for n := len(parts); n > 0; n-- {
		if line := findLine(root, parts[:n]); line > 0 {
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

// findLine follows parts from node: the line of the last key, or of the
// sequence item, it reaches; 0 when the path is not in the file.
func findLine(node *yaml.Node, parts []string) int {
	line := 0
	for _, p := range parts {
		node = deref(node)
		if node == nil {
			return 0
		}
		if strings.HasPrefix(p, "[") {
			i, err := strconv.Atoi(strings.Trim(p, "[]"))
			if node.Kind != yaml.SequenceNode || err != nil || i < 0 || i >= len(node.Content) {
				return 0
			}
			node = deref(node.Content[i])
			line = node.Line
			continue
		}
		k, v := lookup(node, p)
		if k == nil {
			return 0
		}
		node, line = v, k.Line
	}
	return line
}

// lookup finds key in a mapping: its own keys first, then those it merges
// (<<), as the decoder gives them precedence.
func lookup(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if kn := deref(n.Content[i]); kn.Tag != "!!merge" && kn.Value == key {
			return kn, n.Content[i+1]
		}
	}
	eachPair(n, "", func(kn, vn *yaml.Node, _ string) *FieldError {
		if k == nil && kn.Value == key {
			k, v = kn, vn
		}
		return nil
	})
	return k, v
}
