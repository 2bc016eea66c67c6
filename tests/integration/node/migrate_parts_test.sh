#!/usr/bin/env bash
# tests/integration/node/migrate_parts_test.sh: shoal-node's migrations as
# its two parts' own sequences, through the binary (`shoal-node migrate`),
# in a database of the test's own on the fixture's PostgreSQL:
#   - --api=false applies TechEmpower's set only: no Conduit table, the row
#     "techempower 1" in shoal_migrations (and 0.1's row 2 techempower);
#     --bench=false then adds Conduit's; both on again applies nothing
#   - a database made by 0.1 (its schema_migrations: 1 baseline, 2
#     techempower, 3 conduit) is adopted in place, and one with a legacy row
#     this build does not know (or calls otherwise) stops `migrate`, exit 1
#
#   migrate_parts_test.sh SHOAL_NODE_BINARY [WRAPPER...]
set -euo pipefail
binary=$1
shift
wrapper=("$@")
# shellcheck source=SCRIPTDIR/../../support/node_checks.sh
source "$(dirname "$0")/../../support/node_checks.sh"
: "${SHOAL_TEST_DATABASE_URL:?run by ctest with the tiers fixture}" "${SHOAL_TEST_ADMIN_DATABASE_URL:?}"

db=shoal_parts_$$
url=$(sed -E "s#/shoal([?]|\$)#/$db\\1#" <<<"$SHOAL_TEST_DATABASE_URL")
admin_psql() { psql "$SHOAL_TEST_ADMIN_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 "$@"; }
db_psql() { psql "$url" -XAtq -v ON_ERROR_STOP=1 "$@"; }
fresh() { admin_psql -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db OWNER shoal"; }
trap 'admin_psql -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true' EXIT

# migrate [FLAGS...]: sets out and rc.
migrate() {
  set +e
  out=$(env DATABASE_URL="$url" SHOAL_STARTUP_TIMEOUT=10 "${wrapper[@]}" "$binary" migrate "$@" 2>&1)
  rc=$?
  set -e
}
components() { db_psql -c "SELECT string_agg(component || ' ' || version, ',' ORDER BY component, version)
                            FROM shoal_migrations"; }
legacy() { db_psql -c "SELECT string_agg(version || ' ' || name, ',' ORDER BY version) FROM schema_migrations"; }
exists() { [ "$(db_psql -c "SELECT to_regclass('$1') IS NOT NULL")" = t ]; }
all_of() { for table in "$@"; do exists "$table" || return 1; done; }
none_of() { for table in "$@"; do ! exists "$table" || return 1; done; }

# ---- a part switched off ----------------------------------------------------------
fresh
migrate --api=false
check "migrate --api=false exits 0 (got $rc: $out)" [ "$rc" = 0 ]
check "and logs both components, conduit off" \
  grep -q '"message":"schema: conduit 0 (off), techempower 1 (1 applied now)"' <<<"$out"
check "no Conduit table (users, articles)" none_of users articles
check "TechEmpower's tables (world, fortune)" all_of world fortune
check "shoal_migrations: techempower 1 only (got $(components))" [ "$(components)" = "techempower 1" ]
check "0.1's schema_migrations: 2 techempower (got $(legacy))" [ "$(legacy)" = "2 techempower" ]
migrate --bench=false
check "then --bench=false applies Conduit's set (got $rc: $out)" \
  grep -q '"message":"schema: conduit 2, techempower 1 (off) (2 applied now)"' <<<"$out"
check "shoal_migrations: conduit 1, 2, techempower 1 (got $(components))" \
  [ "$(components)" = "conduit 1,conduit 2,techempower 1" ]
check "schema_migrations: what 0.1 would have (got $(legacy))" [ "$(legacy)" = "1 baseline,2 techempower,3 conduit" ]
migrate
check "both on: nothing to apply (got $rc: $out)" \
  grep -q '"message":"schema: conduit 2, techempower 1 (0 applied now)"' <<<"$out"

# ---- a database of 0.1 ------------------------------------------------------------
# Its rows as 0.1 left them, over the same schema (made here by this build,
# then its bookkeeping taken back to 0.1's).
db_psql -c "DROP TABLE shoal_migrations" \
        -c "INSERT INTO users (email, username, password_hash) VALUES ('old@example.com', 'old', 'x')"
migrate
check "0.1's database is adopted in place (got $rc: $out)" \
  grep -q '"message":"schema: conduit 2, techempower 1 (0 applied now, 3 adopted from schema_migrations)"' <<<"$out"
check "its rows are kept" [ "$(db_psql -c "SELECT username FROM users")" = old ]
db_psql -c "INSERT INTO schema_migrations (version, name) VALUES (4, 'reactions')"
migrate
check "a legacy row this build does not know stops migrate, exit 1 (got $rc)" [ "$rc" = 1 ]
check "naming it" grep -q '0004_reactions' <<<"$out"
db_psql -c "DELETE FROM schema_migrations WHERE version = 4" -c "UPDATE schema_migrations SET name = 'comments' WHERE version = 3" \
        -c "DELETE FROM shoal_migrations"
migrate
check "a legacy version recorded under another name stops migrate, exit 1 (got $rc)" [ "$rc" = 1 ]
check "naming both names" grep -q "recorded as 'comments' but this build calls it 'conduit'" <<<"$out"

checks_summary
