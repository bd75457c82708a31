package engine

import (
	"errors"
	"testing"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/vschema"
)

func TestTextResultCharsets(t *testing.T) {
	for _, c := range []struct {
		charset uint32
		ascii   bool
		err     bool
	}{
		{45, false, false},  // utf8mb4_general_ci
		{33, false, false},  // utf8mb3_general_ci
		{224, false, false}, // utf8mb4_unicode_ci
		{8, true, false},    // latin1_swedish_ci
		{35, false, true},   // ucs2_general_ci
		{54, false, true},   // utf16_general_ci
		{0, false, true},    // unknown
	} {
		ascii, err := textResult(&querypb.Field{Name: "x", Type: querypb.Type_VARCHAR, Charset: c.charset})
		if ascii != c.ascii || (err != nil) != c.err {
			t.Errorf("charset %d: ascii %v, err %v; want %v, error %v", c.charset, ascii, err, c.ascii, c.err)
		}
	}
}

type charsetCursor struct {
	fixedCursor
	cs string
}

func (c charsetCursor) ClientCharset() string { return c.cs }

func TestKeyShardNeedsUTF8(t *testing.T) {
	vs := &vschema.VSchema{Shards: []string{"s0", "s1"}}
	tbl := &vschema.Table{Name: "tags", Kind: vschema.Sharded, Column: "tag", Type: vschema.KeyString, Func: vschema.Hash}
	utf8Key, latin1Key := sqltypes.NewVarChar("Straße"), sqltypes.NewVarChar("Stra\xdfe")
	for _, c := range []struct {
		vc     VCursor
		v      sqltypes.Value
		single bool
	}{
		{fixedCursor{}, utf8Key, true},
		{fixedCursor{}, latin1Key, false}, // not valid UTF-8
		{fixedCursor{}, sqltypes.NewVarChar("go"), true},
		{charsetCursor{cs: "utf8mb4"}, utf8Key, true},
		{charsetCursor{cs: "latin1"}, utf8Key, false}, // 'StraÃŸe' in latin1
		{charsetCursor{cs: "latin1"}, sqltypes.NewVarChar("go"), true},
	} {
		_, err := keyShard(c.vc, vs, tbl, c.v, vschema.ForRead)
		if single := err == nil; single != c.single || (err != nil && !errors.Is(err, vschema.ErrNoSingleShard)) {
			t.Errorf("%T %q: %v, want single shard %v", c.vc, c.v.Raw(), err, c.single)
		}
	}
}
