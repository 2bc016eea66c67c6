/* tests/support/test_env.h: where integration tests find their servers.
 *
 * The harness (tests/harness/tiers) starts PostgreSQL and Redis on private
 * ports and ctest passes their addresses in these variables. A missing
 * variable fails the test: an integration test that silently skips proves
 * nothing. */
#ifndef TEST_ENV_H
#define TEST_ENV_H

#include <stdio.h>
#include <stdlib.h>

static inline const char *test_env_require(const char *name)
{
    const char *value = getenv(name);
    if (value == NULL || *value == '\0') {
        fprintf(stderr, "%s is not set: run this test through ctest, whose fixture starts the servers\n", name);
        exit(1);
    }
    return value;
}

/* The application role's database (role shoal, database shoal). */
#define TEST_DATABASE_URL() test_env_require("SHOAL_TEST_DATABASE_URL")
/* A superuser connection, for creating scratch databases and killing backends. */
#define TEST_ADMIN_DATABASE_URL() test_env_require("SHOAL_TEST_ADMIN_DATABASE_URL")
#define TEST_REDIS_URL() test_env_require("SHOAL_TEST_REDIS_URL")

#endif
