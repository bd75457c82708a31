package mysqlerr

import "vitess.io/vitess/go/mysql/sqlerror"

// The MariaDB error codes and SQLSTATEs the proxy answers with that vitess's
// sqlerror has no constants for. Everything else comes from sqlerror; no
// code of the proxy writes a bare number.
const (
	// SSConnectionRejected: the server refused the connection (too many
	// connections, insecure transport).
	SSConnectionRejected = "08004"
	// SSActiveTransaction: not allowed while a transaction is active.
	SSActiveTransaction = "25001"
	// SSReadOnlyTransaction: a write in a READ ONLY transaction.
	SSReadOnlyTransaction = "25006"

	// ERStmtHasNoOpenCursor: COM_STMT_FETCH of a statement without an
	// open cursor (1421).
	ERStmtHasNoOpenCursor = sqlerror.ErrorCode(1421)
	// ERNoPartitionForGivenValue (1526): the closest analogue of a shard
	// key outside every range.
	ERNoPartitionForGivenValue = sqlerror.ErrorCode(1526)
	// ERCantChangeTxCharacteristics: SET TRANSACTION inside a
	// transaction (1568).
	ERCantChangeTxCharacteristics = sqlerror.ErrorCode(1568)
	// ERCantExecuteInReadOnlyTransaction (1792).
	ERCantExecuteInReadOnlyTransaction = sqlerror.ErrorCode(1792)
	// ERMalformedPacket: "Malformed communication packet." (1835).
	ERMalformedPacket = sqlerror.ErrorCode(1835)
	// ERSecureTransportRequired: tls.require and a client that did not
	// upgrade (3159).
	ERSecureTransportRequired = sqlerror.ErrorCode(3159)
)
