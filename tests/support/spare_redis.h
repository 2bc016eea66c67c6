/* tests/support/spare_redis.h: a Redis of the test's own, for tests that
 * need a server in a state the shared fixture must not be put in: a
 * replica (READONLY), a replica without its primary (MASTERDOWN), one
 * running a script past its threshold (BUSY), one loading a large data set
 * after a restart (LOADING), one hung by SIGSTOP. It listens on
 * SHOAL_TEST_SPARE_REDIS_PORT with its files under
 * SHOAL_TEST_SPARE_REDIS_DIR, is a child of the test process (it dies with
 * it), and is stopped by its PID. Include after cmocka.h. */
#ifndef SPARE_REDIS_H
#define SPARE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SPARE_REDIS_MAX_ARGS 16

typedef struct spare_redis {
    pid_t pid; /* 0 while stopped */
    int port;
    char dir[512];
    char url[64]; /* redis://127.0.0.1:PORT/0 */
    const char *args[SPARE_REDIS_MAX_ARGS + 1];
} spare_redis;

/* Starts redis-server with args (NULL-terminated, may be NULL) after the
 * defaults (no persistence, its own folder, emptied first); returns once it
 * accepts connections, which a loading server does before it answers PING. */
void spare_redis_start(spare_redis *r, const char *const *args);
/* SIGTERM and wait: an append-only server writes its file first. */
void spare_redis_stop(spare_redis *r);
/* The same server again on the files it left (a restart). */
void spare_redis_restart(spare_redis *r);
/* PING on a connection of its own: the reply's text ("PONG", "LOADING ...",
 * "BUSY ...") in out, or "" when it cannot be reached. */
void spare_redis_ping(const spare_redis *r, char *out, size_t size);

#endif
