package engine

import (
	"bytes"

	querypb "vitess.io/vitess/go/vt/proto/query"
)

// SQLBindVars returns the bind variables to write into the SQL text sent to
// the shards. A bind variable is written as its value's text, which for a
// DOUBLE parameter of a prepared statement (1.5, 1) reads back as a DECIMAL
// or integer literal: ? / 3 would be 0.3333 instead of 0.333…, and typed
// DECIMAL. Such values get an exponent (1.5e0), which MySQL reads as a
// DOUBLE. bv itself is returned when it holds no such value. Whoever else
// writes a client's parameters into SQL text (the session, for statements
// it does not plan) needs the same.
func SQLBindVars(bv map[string]*querypb.BindVariable) map[string]*querypb.BindVariable {
	var out map[string]*querypb.BindVariable
	for k, v := range bv {
		nv := doubleLiteral(v)
		if nv == v {
			continue
		}
		if out == nil {
			out = make(map[string]*querypb.BindVariable, len(bv))
			for k2, v2 := range bv {
				out[k2] = v2
			}
		}
		out[k] = nv
	}
	if out == nil {
		return bv
	}
	return out
}

func isFloatType(t querypb.Type) bool {
	return t == querypb.Type_FLOAT64 || t == querypb.Type_FLOAT32
}

// needsExponent reports whether a float's text would not read as a DOUBLE.
func needsExponent(b []byte) bool {
	return !bytes.ContainsAny(b, "eEnNiI") && bytes.ContainsAny(b, "0123456789")
}

func withExponent(b []byte) []byte {
	out := make([]byte, 0, len(b)+2)
	return append(append(out, b...), 'e', '0')
}

// doubleLiteral returns v, or a copy of it whose float values carry an
// exponent.
func doubleLiteral(v *querypb.BindVariable) *querypb.BindVariable {
	switch {
	case v == nil:
		return v
	case isFloatType(v.Type):
		if !needsExponent(v.Value) {
			return v
		}
		return &querypb.BindVariable{Type: v.Type, Value: withExponent(v.Value)}
	case v.Type == querypb.Type_TUPLE:
		var vals []*querypb.Value
		for i, x := range v.Values {
			if !isFloatType(x.Type) || !needsExponent(x.Value) {
				continue
			}
			if vals == nil {
				vals = append([]*querypb.Value(nil), v.Values...)
			}
			vals[i] = &querypb.Value{Type: x.Type, Value: withExponent(x.Value)}
		}
		if vals != nil {
			return &querypb.BindVariable{Type: v.Type, Values: vals}
		}
	}
	return v
}
