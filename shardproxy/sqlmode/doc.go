// Package sqlmode owns how a session's sql_mode changes the way MariaDB
// reads the text of a statement, and turns a statement written for one
// sql_mode into the same statement written for the default one, which is
// the only form vitess's sqlparser (and so the planner) reads.
//
// Three modes change reading: NO_BACKSLASH_ESCAPES (a backslash in a string
// literal is an ordinary character), ANSI_QUOTES ("x" is an identifier, not
// a string) and PIPES_AS_CONCAT (|| is concatenation, not OR). Normalize
// rewrites the first two exactly; the third changes the grammar, not the
// tokens, so Normalize only reports that a statement uses it and leaves the
// decision (pass it through whole, or refuse it) to the caller. Combination
// modes (ANSI, ORACLE, MSSQL, ...) are expanded as MariaDB 10.11 does.
//
// Its tokenizer (Tokens) reads statements by the same rules, for what the
// proxy must know of a statement it does not parse: its verb, whether it is
// empty, the databases it names (Qualifiers), MariaDB's RETURNING clause
// (SplitReturning), SET with := (SetAssignments).
//
// It imports only the standard library.
package sqlmode
