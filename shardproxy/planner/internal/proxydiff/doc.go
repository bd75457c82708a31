// Package proxydiff runs the differential corpus (package difftest) through
// the real proxy server with go-sql-driver/mysql. It lives apart from the
// planner's own tests so that those build without the server package.
package proxydiff
