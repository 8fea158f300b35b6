// Package pgdb is the query code sqlc generates from audit/postgres/migrations
// and queries.sql (make generate); only this file is written by hand.
package pgdb
