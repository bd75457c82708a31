package engine

import (
	"fmt"
	"unicode/utf8"

	"vitess.io/vitess/go/mysql/collations"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/vschema"
)

// The proxy hashes string shard keys and compares merged text as UTF-8
// (utf8mb4_general_ci weights). MariaDB takes a statement's text in the
// session's character_set_client and sends text results in its
// character_set_results, so a session with SET NAMES latin1 sends 'é' as one
// byte and gets it back as one byte. Plain ASCII is the same bytes in every
// character set a client may use, so only other bytes need care: they are
// hashed or compared only when known to be UTF-8, and otherwise a read goes
// to every shard, an insert is refused, and a merge is refused.

// SessionCharset is an optional ability of a VCursor: the character set the
// session's statements and parameters are written in (character_set_client,
// e.g. "utf8mb4", "latin1"). Without it, string key values that are not
// valid UTF-8 are taken to be in some other character set.
type SessionCharset interface {
	ClientCharset() string
}

func isUTF8Charset(cs string) bool {
	switch cs {
	case "utf8mb4", "utf8mb3", "utf8", "ascii":
		return true
	}
	return false
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// keyShard is VSchema.KeyShard for a value from the session's statement:
// a string key whose bytes may not be UTF-8 has no single shard the proxy
// can name (vschema.ErrNoSingleShard).
func keyShard(vc VCursor, vs *vschema.VSchema, t *vschema.Table, v sqltypes.Value, p vschema.Purpose) (string, error) {
	if t.KeyType() == vschema.KeyString && (v.IsText() || v.IsBinary()) && !isASCII(v.Raw()) {
		utf8Text := utf8.Valid(v.Raw())
		if sc, ok := vc.(SessionCharset); ok && !isUTF8Charset(sc.ClientCharset()) {
			utf8Text = false
		}
		if !utf8Text {
			return "", fmt.Errorf("%w: string key %s: %s is not UTF-8 (the session's character set is not utf8mb4), so its shard cannot be computed", vschema.ErrNoSingleShard, t.Column, v.String())
		}
	}
	return vs.KeyShard(t, v, p)
}

// textResult says how the bytes of text column f of a shard's result can be
// compared: MariaDB sends text in the session's character_set_results,
// which the column's metadata names. UTF-8 compares exactly; a character
// set whose plain ASCII is ASCII compares exactly only values that are
// plain ASCII without '?' (the mark of a character the conversion lost);
// others (ucs2, utf16, utf32, unknown) are refused.
func textResult(f *querypb.Field) (asciiOnly bool, err error) {
	cs := collations.MySQL8().LookupCharsetName(collations.ID(f.Charset))
	switch cs {
	case "utf8mb4", "utf8mb3", "utf8":
		return false, nil
	case "", "ucs2", "utf16", "utf16le", "utf32":
		return false, Unsupported("merging text column %s sent in character set %s (collation id %d) across shards (use SET NAMES utf8mb4)", f.Name, cs, f.Charset)
	}
	return true, nil
}

// checkASCII refuses a merge over text sent in a character set other than
// UTF-8 (cols with ascii set) when a value is not plain ASCII.
func checkASCII(fields []*querypb.Field, rows [][]sqltypes.Value, cols []int) error {
	for _, c := range cols {
		for _, r := range rows {
			v := r[c]
			if v.IsNull() {
				continue
			}
			for _, b := range v.Raw() {
				if b >= 0x80 || b == '?' {
					return Unsupported("merging text column %s across shards in character set %s: %s is not plain ASCII, and the proxy compares UTF-8 (use SET NAMES utf8mb4)",
						fields[c].Name, collations.MySQL8().LookupCharsetName(collations.ID(fields[c].Charset)), v.String())
				}
			}
		}
	}
	return nil
}
