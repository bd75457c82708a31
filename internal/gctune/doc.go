// Package gctune keeps a Go heap's growth between collections in
// proportion to its short-lived part, not to data that stays (a cache).
//
// GOGC sets the heap goal as a multiple of the whole live heap. The proxy
// runs with a high GOGC (400) because its live heap is small and its
// garbage short-lived; with a row cache of B bytes in the live heap, the
// same GOGC lets the heap grow by 4×B more before collecting, so a 16 MiB
// cache costs about 80 MiB of RSS. Tuner lowers the percentage so that the
// growth allowed is Base% of the live heap other than the pinned bytes:
// the cache counts once.
//
// It owns only that; it imports nothing of the module.
package gctune
