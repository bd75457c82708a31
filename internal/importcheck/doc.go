// Package importcheck holds the tests that keep the package map of
// docs/architecture.md true: TestImportRules reads every package's
// dependencies with `go list -json ./...` and fails on an import the map
// forbids; TestPlansReadByFacts fails on code outside the planner and the
// engine that looks at a plan's primitives by type or at its EXPLAIN
// operators. It has no code of its own and imports nothing of the module.
package importcheck
