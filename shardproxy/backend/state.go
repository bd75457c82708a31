package backend

import (
	"sort"
	"strings"
	"sync"
)

// State is the session state a pooled connection must carry before it runs
// a session's statement: session system variables, as SQL assignments
// (e.g. "@@session.sql_mode = 'ANSI'", or "NAMES 'latin1'"). States are
// immutable and interned, so that sessions with the same variables share one
// *State; a connection remembers the State it last applied and, when the
// next session's State is the same pointer, sends nothing at all. The nil
// *State is the server's defaults.
type State struct {
	key    string
	vars   map[string]string // variable name -> assignment
	sorted []string          // names, "names" first, then in order
}

// Key identifies the assignments: equal keys, equal settings.
func (s *State) Key() string {
	if s == nil {
		return ""
	}
	return s.key
}

// Vars returns the variable names and their assignments, in the order they
// are applied.
func (s *State) Vars() (names, assigns []string) {
	if s == nil {
		return nil, nil
	}
	for _, n := range s.sorted {
		names = append(names, n)
		assigns = append(assigns, s.vars[n])
	}
	return names, assigns
}

// Get returns the assignment of one variable.
func (s *State) Get(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	v, ok := s.vars[name]
	return v, ok
}

// Len is the number of variables set.
func (s *State) Len() int {
	if s == nil {
		return 0
	}
	return len(s.vars)
}

// NamesVar is the variable name under which SET NAMES and SET CHARACTER SET
// are kept: both set the connection's character sets, and the last wins.
const NamesVar = "names"

// DefaultNames resets a connection's character sets to what the proxy's
// backend connections start with.
const DefaultNames = "NAMES utf8mb4"

// States interns States. It is safe for concurrent use.
type States struct {
	mu sync.Mutex
	m  map[string]*State
}

// maxStates bounds the intern table; past it, new States are not interned
// (they still work, they just are not shared).
const maxStates = 10000

// With returns the State that is s with one variable set (assign != "") or
// removed (assign == "").
func (t *States) With(s *State, name, assign string) *State {
	vars := make(map[string]string, s.Len()+1)
	if s != nil {
		for k, v := range s.vars {
			vars[k] = v
		}
	}
	if assign == "" {
		delete(vars, name)
	} else {
		vars[name] = assign
	}
	return t.intern(vars)
}

func (t *States) intern(vars map[string]string) *State {
	if len(vars) == 0 {
		return nil
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		// NAMES resets the character_set_* variables, so it goes first and
		// an explicit character_set_results after it wins.
		if (names[i] == NamesVar) != (names[j] == NamesVar) {
			return names[i] == NamesVar
		}
		return names[i] < names[j]
	})
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0)
		b.WriteString(vars[n])
		b.WriteByte(0)
	}
	key := b.String()
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.m[key]; ok {
		return s
	}
	s := &State{key: key, vars: vars, sorted: names}
	if t.m == nil {
		t.m = map[string]*State{}
	}
	if len(t.m) < maxStates {
		t.m[key] = s
	}
	return s
}

// resetAssign is the assignment that puts a variable back to the server's
// default for a new connection.
func resetAssign(name string) string {
	if name == NamesVar {
		return DefaultNames
	}
	return "@@session." + name + " = DEFAULT"
}

// diffSQL returns the SET statement that turns a connection carrying from
// into one carrying to, or "" when they are the same.
func diffSQL(from, to *State) string {
	if from == to || (from.Len() == 0 && to.Len() == 0) {
		return ""
	}
	var parts []string
	// Resets go first: "character_set_client = DEFAULT" after NAMES would
	// undo what NAMES set. A reset charset variable takes the global value,
	// not the one a connection's charset gives it, so NAMES goes again
	// after it.
	resetCharset := false
	if from != nil {
		for _, n := range from.sorted {
			if n == NamesVar {
				continue
			}
			if _, ok := to.Get(n); !ok {
				parts = append(parts, resetAssign(n))
				resetCharset = resetCharset || isCharsetVar(n)
			}
		}
	}
	namesChanged := false
	if a, b := stateGet(from, NamesVar), stateGet(to, NamesVar); a != b || resetCharset {
		namesChanged = true
		if b == "" {
			parts = append(parts, DefaultNames)
		} else {
			parts = append(parts, b)
		}
	}
	if to != nil {
		for _, n := range to.sorted {
			if n == NamesVar {
				continue
			}
			v := to.vars[n]
			// NAMES rewrites the character_set_* and collation_connection
			// variables: set them again after it even if they did not change.
			if old, ok := from.Get(n); ok && old == v && !(namesChanged && isCharsetVar(n)) {
				continue
			}
			parts = append(parts, v)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "SET " + strings.Join(parts, ", ")
}

func stateGet(s *State, name string) string {
	v, _ := s.Get(name)
	return v
}

func isCharsetVar(n string) bool {
	return strings.HasPrefix(n, "character_set_") || strings.HasPrefix(n, "collation_")
}
