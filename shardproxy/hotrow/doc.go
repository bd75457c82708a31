// Package hotrow combines concurrent writes to one hot row: while one
// statement on a row runs, the statements for the same row that arrive
// queue up, and the next round runs them as one statement (AliSQL's hot-row
// idea, done in the proxy). Each caller learns its outcome only after its
// round's statement has returned, so nothing acknowledged is ever lost;
// when a combined statement fails, every caller of the round runs its own
// statement instead, so exactly the callers whose own statement fails get
// an error.
//
// The package knows nothing of SQL or of the shards: the caller gives each
// row a Key and a Request, and a function that runs a round. It may import
// only Prometheus.
package hotrow
