// Package cachetier is a read-through cache for hot keys that any Go service
// can put in front of a slower store. It knows nothing of SQL: callers pass
// keys and a loader.
//
// A lookup goes down a funnel and stops at the first stage that can answer:
//
//	bloom filter of existing keys → ristretto (values and negative entries) → loader
//
// and each stage guards against one classic failure:
//
//   - penetration (lookups of keys that do not exist): a bloom filter built
//     by the caller from the store's keys answers "absent" without a load,
//     and a load that finds nothing is remembered briefly (a negative entry);
//   - breakdown (a hot key expiring under load): concurrent misses of a key
//     share one load (singleflight), and a fill is visible to readers before
//     the load's waiters return, so latecomers hit;
//   - avalanche (many keys expiring at once): every TTL carries jitter.
//
// Correctness under writes. Every key has a version (a striped counter, so
// memory is fixed) and the cache has a generation. Invalidate(key) bumps the
// key's version and InvalidateAll bumps the generation, for writes whose keys
// are unknown. A fill takes both before it loads, as Facebook memcache's
// leases do, and is stored with them; an entry whose version or generation
// is no longer current is never returned, and a fill whose version moved
// while it loaded is not stored at all. Hence: if the caller calls
// Invalidate after the write is durable in the store and before it
// acknowledges the write, no Get that begins after that acknowledgement
// returns a value loaded before the write. A Get that joins a load already
// in flight shares it only if no invalidation happened in between (the
// flight is keyed by version).
//
// A key has two parts: the row (what writes invalidate, what the bloom
// filter and the hot-key tracker see) and a variant (e.g. which columns a
// reader asked for); entries of every variant of a row share its version.
//
// Hot keys: a sliding-window count-min sketch per cache, for reads and for
// writes, with a small candidate set gives the approximate top-K.
//
// The package imports ristretto, bloom and golang.org/x/sync only; metrics
// are exposed as a Stats snapshot for the caller to export.
package cachetier
