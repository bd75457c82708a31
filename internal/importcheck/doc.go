// Package importcheck holds one test, TestImportRules, which keeps the
// package map of docs/architecture.md true: it reads every package's
// dependencies with `go list -json ./...` and fails on an import the map
// forbids. It has no code of its own and imports nothing of the module.
package importcheck
