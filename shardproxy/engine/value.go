package engine

import (
	"fmt"
	"strings"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// EvalValue is a value a plan needs at execute time: a literal fixed in the
// plan, a bind variable (a normalized literal or a prepared statement
// parameter), a list bind variable (::name, a normalized IN list) or a tuple
// of those.
type EvalValue struct {
	Literal sqltypes.Value // when Name == "" and Tuple == nil
	Name    string         // bind variable name, without the colon
	List    bool           // Name is a list bind variable
	Tuple   []EvalValue    // an IN list
}

// BindVar is an EvalValue for the bind variable name.
func BindVar(name string) EvalValue { return EvalValue{Name: name} }

// ListVar is an EvalValue for the list bind variable name.
func ListVar(name string) EvalValue { return EvalValue{Name: name, List: true} }

// LiteralValue is an EvalValue fixed in the plan.
func LiteralValue(v sqltypes.Value) EvalValue { return EvalValue{Literal: v} }

// Value resolves a single value.
func (e *EvalValue) Value(bv map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	if e.Name == "" {
		if e.Tuple != nil {
			return sqltypes.NULL, fmt.Errorf("engine: a list where one value is needed")
		}
		return e.Literal, nil
	}
	b, ok := bv[e.Name]
	if !ok {
		return sqltypes.NULL, fmt.Errorf("engine: missing bind variable :%s", e.Name)
	}
	if b.Type == querypb.Type_TUPLE {
		return sqltypes.NULL, fmt.Errorf("engine: bind variable :%s is a list where one value is needed", e.Name)
	}
	return sqltypes.MakeTrusted(b.Type, b.Value), nil
}

// Values resolves a list (a list bind variable or a tuple) or a single value.
func (e *EvalValue) Values(bv map[string]*querypb.BindVariable) ([]sqltypes.Value, error) {
	switch {
	case e.Tuple != nil:
		out := make([]sqltypes.Value, 0, len(e.Tuple))
		for i := range e.Tuple {
			v, err := e.Tuple[i].Value(bv)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case e.List:
		b, ok := bv[e.Name]
		if !ok {
			return nil, fmt.Errorf("engine: missing bind variable ::%s", e.Name)
		}
		if b.Type != querypb.Type_TUPLE {
			return []sqltypes.Value{sqltypes.MakeTrusted(b.Type, b.Value)}, nil
		}
		out := make([]sqltypes.Value, 0, len(b.Values))
		for _, v := range b.Values {
			out = append(out, sqltypes.MakeTrusted(v.Type, v.Value))
		}
		return out, nil
	}
	v, err := e.Value(bv)
	if err != nil {
		return nil, err
	}
	return []sqltypes.Value{v}, nil
}

func (e EvalValue) String() string {
	switch {
	case e.Tuple != nil:
		parts := make([]string, len(e.Tuple))
		for i, t := range e.Tuple {
			parts[i] = t.String()
		}
		return "(" + strings.Join(parts, ", ") + ")"
	case e.List:
		return "::" + e.Name
	case e.Name != "":
		return ":" + e.Name
	}
	var b strings.Builder
	e.Literal.EncodeSQLStringBuilder(&b)
	return b.String()
}
