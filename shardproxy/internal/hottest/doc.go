// Package hottest holds the end-to-end tests of hot tables through the real
// proxy server, as a client sees it: sysbench over sub-tables, sequences
// through several proxies while the ID service fails over, and hot-row
// write combining. It has no non-test code.
package hottest
