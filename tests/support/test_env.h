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
#include <sys/types.h>
#include <unistd.h>

static inline const char *test_env_require(const char *name)
{
    const char *value = getenv(name);
    if (value == NULL || *value == '\0') {
        fprintf(stderr, "%s is not set: run this test through ctest, whose fixture starts the servers\n", name);
        exit(1);
    }
    return value;
}

/* How much slower than normal the tests run: SHOAL_TEST_TIME_SCALE, 1 when
 * unset. tests/valgrind sets it, since memcheck runs code tens of times
 * slower; latency bounds that a test asserts are multiplied by it, so that
 * the run still checks memory without failing on time alone. */
static inline double test_env_time_scale(void)
{
    const char *text = getenv("SHOAL_TEST_TIME_SCALE");
    double scale = text != NULL ? strtod(text, NULL) : 1.0;
    return scale >= 1.0 ? scale : 1.0;
}

/* The application role's database (role shoal, database shoal). */
#define TEST_DATABASE_URL() test_env_require("SHOAL_TEST_DATABASE_URL")
/* A superuser connection, for creating scratch databases and killing backends. */
#define TEST_ADMIN_DATABASE_URL() test_env_require("SHOAL_TEST_ADMIN_DATABASE_URL")
#define TEST_REDIS_URL() test_env_require("SHOAL_TEST_REDIS_URL")

/* The fixture's Redis, for tests that hang it (SIGSTOP) or watch it
 * restart: its PID from the file the harness keeps, 0 while there is none
 * (between a stop and a start). */
static inline pid_t test_env_read_redis_pid(void)
{
    FILE *file = fopen(test_env_require("SHOAL_TEST_REDIS_PID_FILE"), "r");
    if (file == NULL)
        return 0;
    int pid = 0;
    if (fscanf(file, "%d", &pid) != 1)
        pid = 0;
    fclose(file);
    return pid > 1 ? (pid_t)pid : 0;
}

/* The same, waiting up to 5 s for Redis to write it; a missing PID fails
 * the test. */
static inline pid_t test_env_redis_pid(void)
{
    pid_t pid = 0;
    for (int i = 0; i < 100 && (pid = test_env_read_redis_pid()) == 0; i++)
        usleep(50 * 1000);
    if (pid == 0) {
        fprintf(stderr, "no Redis PID in %s\n", test_env_require("SHOAL_TEST_REDIS_PID_FILE"));
        exit(1);
    }
    return pid;
}

#endif
