/* store/store.c: a worker's PostgreSQL connection. */
#include "store.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"

struct store {
    PGconn *connection;
    char *conninfo;
    char *application_name;
    int connect_timeout_s;
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
    /* dbname with expand_dbname=1 accepts a whole URI or conninfo string;
     * the other keywords fill in what it leaves out. */
    const char *keywords[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *values[] = {config->conninfo != NULL && config->conninfo[0] != '\0' ? config->conninfo : NULL,
                            timeout,
                            config->application_name != NULL ? config->application_name : "shoal-node",
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
    s->conninfo = strdup(config->conninfo != NULL ? config->conninfo : "");
    s->application_name = strdup(config->application_name != NULL ? config->application_name : "shoal-node");
    s->connect_timeout_s = config->connect_timeout_s;
    if (s->conninfo == NULL || s->application_name == NULL) {
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
    free(s->conninfo);
    free(s->application_name);
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
        PQfinish(s->connection);
    store_config config = {
        .conninfo = s->conninfo,
        .connect_timeout_s = s->connect_timeout_s,
        .application_name = s->application_name,
    };
    s->connection = store_connect(&config);
    if (!store_connected(s))
        return false;
    if (s->ever_connected)
        s->reconnects++;
    s->ever_connected = true;
    return true;
}

store_status store_ping(store *s)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_connected = store_connected(s);
        if (!ensure_connected(s, attempt > 0))
            return STORE_UNAVAILABLE;
        /* The empty query is the cheapest real round trip. */
        PGresult *result = PQexec(s->connection, "");
        ExecStatusType status = result != NULL ? PQresultStatus(result) : PGRES_FATAL_ERROR;
        PQclear(result);
        if (status == PGRES_EMPTY_QUERY)
            return STORE_OK;
        if (PQstatus(s->connection) == CONNECTION_OK)
            return STORE_ERROR;
        /* The connection died under us (a server restart): retry once on a
         * fresh one, but only if it had been good before this call. */
        if (!was_connected)
            break;
    }
    return STORE_UNAVAILABLE;
}
