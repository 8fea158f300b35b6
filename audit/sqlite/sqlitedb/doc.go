// Package sqlitedb is the query code sqlc generates from
// audit/sqlite/migrations and queries.sql (make generate); only this file
// is written by hand.
package sqlitedb
