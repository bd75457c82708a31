package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/strata-db/strata/shardproxy/vschema"
)

// VSchema builds the routing schema from the databases section and validates
// it. Errors are *FieldError with the YAML path of the field at fault.
func (c *Config) VSchema() (*vschema.VSchema, error) {
	vs := &vschema.VSchema{Shards: c.ShardNames(), Databases: map[string]*vschema.Database{}}
	names := make([]string, 0, len(c.Databases))
	for n := range c.Databases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		d := c.Databases[name]
		p := "databases." + name
		if d == nil {
			return nil, fieldErr(p, "empty: give sharded: true and tables, or the shard of an unsharded database")
		}
		if err := checkDBName(name); err != nil {
			return nil, fieldErr(p, "%v", err)
		}
		vd := &vschema.Database{Name: name, Sharded: d.Sharded, Shard: d.Shard, Tables: map[string]*vschema.Table{}}
		if !d.Sharded {
			if d.Shard == "" {
				return nil, fieldErr(p+".shard", "an unsharded database needs the shard that holds it (or sharded: true with its tables)")
			}
			if len(d.Tables) > 0 {
				return nil, fieldErr(p+".tables", "only a sharded database declares tables; every table of an unsharded database lives on its shard")
			}
			vs.Databases[name] = vd
			continue
		}
		if len(d.Tables) == 0 {
			return nil, fieldErr(p+".tables", "a sharded database declares its tables")
		}
		tnames := make([]string, 0, len(d.Tables))
		for n := range d.Tables {
			tnames = append(tnames, n)
		}
		sort.Strings(tnames)
		for _, tn := range tnames {
			tp := p + ".tables." + tn
			t := d.Tables[tn]
			if t == nil {
				return nil, fieldErr(tp, "empty: give its kind")
			}
			vt, err := t.vtable(tp)
			if err != nil {
				return nil, err
			}
			expanded, err := expandName(tn)
			if errors.Is(err, errNoBrace) {
				expanded = []string{tn}
			} else if err != nil {
				return nil, fieldErr(tp, "%v", err)
			}
			for _, n := range expanded {
				if _, dup := vd.Tables[n]; dup {
					return nil, fieldErr(tp, "table %s is declared twice", n)
				}
				cp := *vt
				cp.Name = n
				vd.Tables[n] = &cp
			}
		}
		vs.Databases[name] = vd
	}
	if err := vs.Validate(); err != nil {
		// vschema reports paths in the same shape as the YAML
		// (databases.<db>.tables.<t>.<field>): keep them.
		msg := strings.TrimPrefix(err.Error(), "vschema: ")
		if i := strings.Index(msg, ": "); i > 0 {
			return nil, fieldErr(msg[:i], "%s", msg[i+2:])
		}
		return nil, fieldErr("databases", "%s", msg)
	}
	return vs, nil
}

func (t *Table) vtable(p string) (*vschema.Table, error) {
	vt := &vschema.Table{Column: t.Column, Type: vschema.KeyType(t.Type), Shard: t.Shard}
	switch t.Kind {
	case "sharded":
		vt.Kind = vschema.Sharded
		switch t.Function {
		case "", "hash":
			vt.Func = vschema.Hash
		case "range":
			vt.Func = vschema.Range
		default:
			return nil, fieldErr(p+".function", "%q, want hash or range", t.Function)
		}
	case "reference":
		vt.Kind = vschema.Reference
	case "unsharded":
		vt.Kind = vschema.Unsharded
	case "":
		return nil, fieldErr(p+".kind", "required: sharded, reference or unsharded")
	default:
		return nil, fieldErr(p+".kind", "%q, want sharded, reference or unsharded", t.Kind)
	}
	if t.Kind != "sharded" && (t.Function != "" || t.Type != "") {
		return nil, fieldErr(p, "function and type are only for sharded tables")
	}
	for i, r := range t.Ranges {
		rp := fmt.Sprintf("%s.ranges[%d]", p, i)
		b := vschema.RangeBound{Shard: r.Shard}
		if r.Upper == nil {
			if i != len(t.Ranges)-1 {
				return nil, fieldErr(rp+".upper", "required: only the last range may leave it out")
			}
			b.Unbounded = true
		} else {
			b.Upper = *r.Upper
		}
		vt.Ranges = append(vt.Ranges, b)
	}
	return vt, nil
}

func checkDBName(n string) error {
	if n == "" || len(n) > 64 {
		return fmt.Errorf("%q: a database name has 1 to 64 characters", n)
	}
	for _, r := range n {
		if r == '`' || r == '/' || r == '\\' || r == '.' || r == 0 {
			return fmt.Errorf("%q: a database name may not hold %q", n, r)
		}
	}
	switch strings.ToLower(n) {
	case "information_schema", "mysql", "performance_schema", "sys":
		return fmt.Errorf("%q is a system database", n)
	}
	return nil
}
