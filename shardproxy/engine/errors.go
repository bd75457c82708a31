package engine

import (
	"fmt"

	"vitess.io/vitess/go/mysql/sqlerror"
)

// Unsupported is MySQL error 1235 (ER_NOT_SUPPORTED_YET) with a message that
// names what the proxy cannot do across shards. The engine and the planner
// return it instead of an answer that could be wrong.
func Unsupported(format string, args ...any) *sqlerror.SQLError {
	return sqlerror.NewSQLError(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
		"This version of Strata doesn't yet support '"+fmt.Sprintf(format, args...)+"'")
}
