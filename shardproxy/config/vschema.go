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
				if cp.Sequences, err = t.sequenceColumns(tp, name, n); err != nil {
					return nil, err
				}
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
	if err := t.subTables(p, vt); err != nil {
		return nil, err
	}
	if t.CombineWrites && t.Kind != "sharded" {
		return nil, fieldErr(p+".combine_writes", "only for a sharded table whose shard key is its primary key (this one is %s)", t.Kind)
	}
	vt.CombineWrites = t.CombineWrites
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

// subTables fills the sub-table layout of a table.
func (t *Table) subTables(p string, vt *vschema.Table) error {
	month := t.SubTableBy == "month"
	if t.Kind != "sharded" && (t.SubTables != 0 || t.SubTableBy != "" || t.SubTableColumn != "") {
		return fieldErr(p+".sub_tables", "only a sharded table has sub-tables (this one is %s)", t.Kind)
	}
	if !month && (t.SubTableColumn != "" || t.SubTableFrom != "" || t.SubTableTo != "" || t.SubTableAhead != nil) {
		return fieldErr(p+".sub_table_by", "sub_table_column, sub_table_from, sub_table_to and sub_table_ahead are for sub_table_by: month")
	}
	switch t.SubTableBy {
	case "", "hash":
		if t.SubTables == 0 {
			if t.SubTableBy != "" {
				return fieldErr(p+".sub_tables", "sub_table_by: hash needs sub_tables: N")
			}
			return nil
		}
		if t.SubTables < 2 || t.SubTables > 1024 {
			return fieldErr(p+".sub_tables", "%d, want 2 to 1024 sub-tables per shard (0: none)", t.SubTables)
		}
		vt.Sub = vschema.SubTables{By: vschema.SubHash, Count: t.SubTables}
	case "month":
		if t.SubTables != 0 {
			return fieldErr(p+".sub_tables", "a month-partitioned table has one sub-table per month: leave sub_tables out")
		}
		if t.SubTableColumn == "" {
			return fieldErr(p+".sub_table_column", "required with sub_table_by: month: the DATE or DATETIME column whose month picks the sub-table")
		}
		from, err := vschema.ParseMonth(t.SubTableFrom)
		if err != nil {
			return fieldErr(p+".sub_table_from", "%v (the first month, required with sub_table_by: month)", err)
		}
		var to vschema.Month
		if t.SubTableTo != "" {
			if to, err = vschema.ParseMonth(t.SubTableTo); err != nil {
				return fieldErr(p+".sub_table_to", "%v", err)
			}
			if to < from {
				return fieldErr(p+".sub_table_to", "%s is before sub_table_from %s", to, from)
			}
		}
		ahead := 3
		if t.SubTableAhead != nil {
			ahead = *t.SubTableAhead
			if ahead < 0 || ahead > 120 {
				return fieldErr(p+".sub_table_ahead", "%d, want 0 to 120 months", ahead)
			}
		}
		vt.Sub = vschema.SubTables{By: vschema.SubMonth, Column: t.SubTableColumn, From: from, To: to, Ahead: ahead}
	default:
		return fieldErr(p+".sub_table_by", "%q, want hash or month", t.SubTableBy)
	}
	return nil
}

// sequenceColumns are the generated columns of table n of database db.
func (t *Table) sequenceColumns(p, db, n string) ([]vschema.Sequence, error) {
	if len(t.Sequences) == 0 {
		return nil, nil
	}
	if t.Kind != "sharded" {
		return nil, fieldErr(p+".sequences", "only a sharded table has generated columns (this one is %s)", t.Kind)
	}
	var out []vschema.Sequence
	seen := map[string]bool{}
	for i, sc := range t.Sequences {
		f := fmt.Sprintf("%s.sequences[%d]", p, i)
		col := strings.ToLower(sc.Column)
		switch {
		case sc.Column == "":
			return nil, fieldErr(f+".column", "required")
		case seen[col]:
			return nil, fieldErr(f+".column", "%s is listed twice", sc.Column)
		}
		seen[col] = true
		tag := sc.Tag
		if tag == "" {
			tag = n + "." + sc.Column
			if db != "" {
				tag = db + "." + tag
			}
		}
		if !sequenceTag.MatchString(tag) {
			return nil, fieldErr(f+".tag", "%q is not a valid ID service tag (1 to 64 letters, digits and _-.:)", tag)
		}
		out = append(out, vschema.Sequence{Column: sc.Column, Tag: tag})
	}
	return out, nil
}
