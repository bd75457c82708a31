package mariadbcoll

// Collation is one row of MariaDB's information_schema.COLLATIONS.
type Collation struct {
	ID      uint16
	Name    string
	Charset string
	Default bool // the character set's default collation
}

// ByID returns the collation MariaDB 10.11 numbers id.
func ByID(id uint16) (Collation, bool) {
	c, ok := byID[id]
	return c, ok
}

// ClientCharset reports whether MariaDB accepts the character set as a
// client's (SET NAMES, the handshake): not ucs2, utf16, utf16le or utf32,
// whose characters may hold a NUL or a quote byte. A handshake naming one
// of those gets the server's default character set instead.
func ClientCharset(cs string) bool {
	switch cs {
	case "ucs2", "utf16", "utf16le", "utf32":
		return false
	}
	return true
}

var byID = func() map[uint16]Collation {
	m := make(map[uint16]Collation, len(table))
	for _, c := range table {
		m[c.ID] = c
	}
	return m
}()
