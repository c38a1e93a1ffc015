// Package ords talks to an Autonomous Database through ORDS REST-enabled SQL
// (POST <base>/_/sql) to manage IAM-mapped database users and roles.
//
// Nothing reaches the database as free text: names become Identifier and
// GlobalName values (ident.go), which refuse anything that could break out of
// a quoted identifier or a string literal, and statements are built only by
// the typed builders in statement.go, with query values passed as binds.
package ords
