package compat

import "testing"

// TestHandshakeCollation: a client that announces a collation in its
// handshake gets it on its connection through the proxy as directly,
// whatever its number (go-sql-driver sends the number; MariaDB reads it in
// its own table).
func TestHandshakeCollation(t *testing.T) {
	for _, coll := range []string{
		"cp1257_bin", "latin1_german2_ci", "latin1_swedish_ci", "utf8mb4_unicode_ci", "utf8mb4_bin",
		"utf8mb4_unicode_520_ci", "utf8mb3_general_ci", "latin2_czech_cs", "big5_chinese_ci",
		"gbk_bin", "sjis_japanese_ci", "ascii_bin", "cp1250_polish_ci", "binary", "koi8r_general_ci",
		"utf8mb4_general_ci", "utf8mb4_0900_ai_ci",
	} {
		t.Run(coll, func(t *testing.T) {
			p := connect(t, "direct", "test", "collation="+coll)
			q := "SELECT @@collation_connection, @@character_set_client, @@character_set_results"
			d, x := ask(t, p.direct, q), ask(t, p.proxied, q)
			if d.String() != x.String() {
				t.Errorf("%s: MariaDB %v, through the proxy %v", coll, d, x)
			}
		})
	}
}
