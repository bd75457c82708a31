// Package loaddata reads LOAD DATA [LOCAL] INFILE statements and their
// files as MariaDB 10.11 reads them, for the proxy's load into sharded
// tables: Parse takes the statement apart (the file's format, the table,
// IGNORE n LINES, the column list, the columns SET assigns), and Reader
// cuts a file into the records the server would read, each with the
// fields it would read from it (READ_INFO in MariaDB's sql_load.cc: field
// and line terminators, enclosures, escapes, STARTING BY, a line with more
// fields than columns, \N and NULL). The proxy sends each record's bytes
// untouched to the shard its key picks, so that every shard reads each of
// its records exactly as the server would have read the whole file.
//
// It imports sqlmode (statement tokens) and nothing else of the module.
package loaddata
