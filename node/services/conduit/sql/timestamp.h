/* node/services/conduit/sql/timestamp.h: how the RealWorld API's timestamps leave PostgreSQL.
 *
 * Every createdAt and updatedAt is ISO 8601 in UTC with milliseconds,
 * "2026-11-24T07:22:56.637Z", formatted by the server in the statement
 * itself, so that the node copies text and never parses or formats a time.
 * AT TIME ZONE 'UTC' makes the text independent of the session's TimeZone
 * setting; MS truncates the microseconds that timestamptz keeps.
 *
 *     "SELECT " STORE_SQL_ISO8601("c.created_at") " FROM comments c"
 *
 * column is SQL text (a column or any timestamptz expression). */
#ifndef STORE_TIMESTAMP_H
#define STORE_TIMESTAMP_H

#define STORE_SQL_ISO8601(column) \
    "to_char((" column ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#endif
