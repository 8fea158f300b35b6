// Package sqlitedb is the query code sqlc generates from
// audit/sqlite/schema.sql and queries.sql (make generate); only this file
// is written by hand.
package sqlitedb
