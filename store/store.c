/* store/store.c: a worker's PostgreSQL connection. */
#include "store.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"

struct store {
    PGconn *connection;
    store_config config; /* its strings are this store's own copies */
    uint64_t last_attempt_ms;
    bool ever_connected;
    unsigned long reconnects;
};

static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static void ignore_notice(void *context, const char *message)
{
    (void)context;
    (void)message;
}

PGconn *store_connect(const store_config *config)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", config->connect_timeout_s > 0 ? config->connect_timeout_s : 2);
    /* dbname with expand_dbname=1 accepts a whole URI or conninfo string.
     * libpq lets later keywords override earlier ones, so the defaults come
     * first and whatever the URI says wins. */
    const char *keywords[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *values[] = {timeout,
                            config->application_name != NULL ? config->application_name : "shoal-node",
                            config->conninfo != NULL && config->conninfo[0] != '\0' ? config->conninfo : NULL,
                            NULL};
    PGconn *connection = PQconnectdbParams(keywords, values, 1);
    if (connection != NULL)
        PQsetNoticeProcessor(connection, ignore_notice, NULL);
    return connection;
}

store *store_open(const store_config *config)
{
    store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->config = *config;
    s->config.conninfo = strdup(config->conninfo != NULL ? config->conninfo : "");
    s->config.application_name = strdup(config->application_name != NULL ? config->application_name : "shoal-node");
    if (s->config.answer_timeout_ms <= 0)
        s->config.answer_timeout_ms = 1000 * (config->connect_timeout_s > 0 ? config->connect_timeout_s : 2);
    if (s->config.conninfo == NULL || s->config.application_name == NULL) {
        store_close(s);
        return NULL;
    }
    return s;
}

void store_close(store *s)
{
    if (s == NULL)
        return;
    if (s->connection != NULL)
        PQfinish(s->connection);
    free((char *)s->config.conninfo);
    free((char *)s->config.application_name);
    free(s);
}

bool store_connected(const store *s)
{
    return s->connection != NULL && PQstatus(s->connection) == CONNECTION_OK;
}

unsigned long store_reconnect_count(const store *s)
{
    return s->reconnects;
}

int store_backend_pid(const store *s)
{
    return store_connected(s) ? PQbackendPID(s->connection) : 0;
}

static void drop_connection(store *s)
{
    PQfinish(s->connection);
    s->connection = NULL;
}

/* Connects when there is no good connection, unless the last attempt was
 * too recent (forced attempts ignore that: a first failure after a server
 * restart deserves one immediate retry). */
static bool ensure_connected(store *s, bool forced)
{
    if (store_connected(s))
        return true;
    uint64_t now = monotonic_ms();
    if (!forced && s->last_attempt_ms != 0 && now - s->last_attempt_ms < STORE_RECONNECT_INTERVAL_MS)
        return false;
    s->last_attempt_ms = now;
    if (s->connection != NULL)
        drop_connection(s);
    s->connection = store_connect(&s->config);
    if (!store_connected(s))
        return false;
    if (s->ever_connected)
        s->reconnects++;
    s->ever_connected = true;
    return true;
}

/* Sends sql and waits at most the answer timeout for all of its results;
 * returns the last one, or NULL when the connection broke or the server did
 * not answer in time. A server that stopped answering cannot be trusted
 * with the next statement either, so the connection is dropped then. */
static PGresult *exec_within_deadline(store *s, const char *sql)
{
    PGconn *connection = s->connection;
    if (!PQsendQuery(connection, sql))
        return NULL;
    uint64_t deadline = monotonic_ms() + (uint64_t)s->config.answer_timeout_ms;
    PGresult *last = NULL;
    for (;;) {
        while (PQisBusy(connection)) {
            uint64_t now = monotonic_ms();
            if (now >= deadline) {
                PQclear(last);
                drop_connection(s);
                return NULL;
            }
            struct pollfd readable = {.fd = PQsocket(connection), .events = POLLIN};
            int ready = poll(&readable, 1, (int)(deadline - now));
            if (ready < 0 && errno != EINTR) {
                PQclear(last);
                drop_connection(s);
                return NULL;
            }
            if (ready > 0 && !PQconsumeInput(connection)) {
                PQclear(last);
                return NULL; /* broken; PQstatus says CONNECTION_BAD */
            }
        }
        PGresult *result = PQgetResult(connection);
        if (result == NULL)
            return last;
        PQclear(last);
        last = result;
    }
}

store_status store_ping(store *s)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_connected = store_connected(s);
        if (!ensure_connected(s, attempt > 0))
            return STORE_UNAVAILABLE;
        /* The empty query is the cheapest real round trip. */
        PGresult *result = exec_within_deadline(s, "");
        ExecStatusType status = result != NULL ? PQresultStatus(result) : PGRES_FATAL_ERROR;
        PQclear(result);
        if (status == PGRES_EMPTY_QUERY)
            return STORE_OK;
        if (s->connection == NULL)
            return STORE_UNAVAILABLE; /* no answer in time: not worth a retry now */
        if (PQstatus(s->connection) == CONNECTION_OK)
            return STORE_ERROR;
        /* The connection died under us (a server restart): retry once on a
         * fresh one, but only if it had been good before this call. */
        if (!was_connected)
            break;
    }
    return STORE_UNAVAILABLE;
}

void store_tidy_message(char *text)
{
    for (char *p = text; *p != '\0'; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    size_t length = strlen(text);
    while (length > 0 && text[length - 1] == ' ')
        text[--length] = '\0';
}

int store_conninfo_check(const char *conninfo, char *error, size_t error_size)
{
    if (conninfo == NULL || conninfo[0] == '\0')
        return 0; /* libpq's PG* variables */
    char *reason = NULL;
    PQconninfoOption *options = PQconninfoParse(conninfo, &reason);
    if (options == NULL) {
        snprintf(error, error_size, "%s", reason != NULL ? reason : "out of memory");
        store_tidy_message(error);
        PQfreemem(reason);
        return -1;
    }
    PQconninfoFree(options);
    return 0;
}
