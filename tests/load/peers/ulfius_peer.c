/* tests/load/peers/ulfius_peer.c: the ulfius peer of tests/load/run.
 *
 * The closest C peer to a shoal node: ulfius (libmicrohttpd + jansson, from
 * Debian's libulfius-dev) serving the TechEmpower routes the node serves
 * first, written as an ulfius user would write them:
 *
 *   GET /json       {"message":"Hello, World!"}   application/json (jansson)
 *   GET /plaintext  Hello, World!                 text/plain
 *   GET /db         {"id":N,"randomNumber":M}     application/json: one row of
 *                   world by a random id 1..10000, a prepared statement on a
 *                   libpq connection of the worker thread's own
 *
 * Ulfius runs in its thread-pool mode: libmicrohttpd's internal epoll
 * thread pool, one thread per CPU unless --threads says otherwise (ulfius'
 * default is a thread per connection, which no one benchmarks). Each pool
 * thread opens its PostgreSQL connection on its first /db and prepares the
 * select there, as the node's store does per worker; a broken connection
 * answers 503 and is opened again on the thread's next /db.
 *
 *   ulfius-peer --port PORT [--database-url URL] [--threads N] [--address IPV4]
 *
 * DATABASE_URL is read when --database-url is not given. Listens on
 * 127.0.0.1 by default. SIGTERM or SIGINT stop it: the daemon stops (its
 * threads joined), every connection is closed, exit 0. A peer, not shoal
 * code: nothing here is linked into the node.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getrandom, strsignal; CMake defines it for the whole tree */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <ulfius.h>

#define WORLD_ROWS 10000
#define WORLD_STATEMENT "world_select_by_id"
#define WORLD_SQL "SELECT id, randomnumber FROM world WHERE id = $1"
#define HELLO "Hello, World!"
/* What PostgreSQL shows in pg_stat_activity for these connections. */
#define APPLICATION_NAME "ulfius-peer"

/* ------------------------------------------------------------ connections */

/* Every thread's connection is also listed here, so that main can close
 * them after the daemon has joined its threads (thread-local storage has no
 * destructor of its own). */
typedef struct peer_connection {
    PGconn *conn;
    struct peer_connection *next;
} peer_connection;

static pthread_mutex_t connections_lock = PTHREAD_MUTEX_INITIALIZER;
static peer_connection *connections;
static const char *database_url;

static _Thread_local peer_connection *thread_connection;
static _Thread_local uint64_t thread_random_state;

static void connections_add(peer_connection *c)
{
    pthread_mutex_lock(&connections_lock);
    c->next = connections;
    connections = c;
    pthread_mutex_unlock(&connections_lock);
}

static void connections_remove(peer_connection *c)
{
    pthread_mutex_lock(&connections_lock);
    for (peer_connection **p = &connections; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&connections_lock);
}

static void connections_close_all(void)
{
    pthread_mutex_lock(&connections_lock);
    while (connections != NULL) {
        peer_connection *c = connections;
        connections = c->next;
        PQfinish(c->conn);
        free(c);
    }
    pthread_mutex_unlock(&connections_lock);
}

static void drop_thread_connection(void)
{
    if (thread_connection == NULL)
        return;
    connections_remove(thread_connection);
    PQfinish(thread_connection->conn);
    free(thread_connection);
    thread_connection = NULL;
}

/* The calling thread's connection with the select prepared, opened on
 * first use; NULL (and a line on stderr) when PostgreSQL cannot be
 * reached. */
static PGconn *thread_database(void)
{
    if (thread_connection != NULL)
        return thread_connection->conn;
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *values[] = {database_url, APPLICATION_NAME, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL) {
        fprintf(stderr, "ulfius-peer: PQconnectdbParams: out of memory\n");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "ulfius-peer: connecting to PostgreSQL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PGresult *prepared = PQprepare(conn, WORLD_STATEMENT, WORLD_SQL, 1, NULL);
    if (prepared == NULL || PQresultStatus(prepared) != PGRES_COMMAND_OK) {
        fprintf(stderr, "ulfius-peer: preparing %s: %s", WORLD_STATEMENT, PQerrorMessage(conn));
        PQclear(prepared);
        PQfinish(conn);
        return NULL;
    }
    PQclear(prepared);
    peer_connection *c = malloc(sizeof *c);
    if (c == NULL) {
        fprintf(stderr, "ulfius-peer: out of memory\n");
        PQfinish(conn);
        return NULL;
    }
    c->conn = conn;
    connections_add(c);
    thread_connection = c;
    return conn;
}

/* ------------------------------------------------------------ random ids */

/* xorshift64* per thread, seeded from the kernel on first use: ids need to
 * be spread, not secret, and a shared generator would need a lock. */
static int random_world_id(void)
{
    if (thread_random_state == 0) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed || seed == 0)
            seed = (uint64_t)(uintptr_t)&seed ^ 0x9e3779b97f4a7c15u;
        thread_random_state = seed;
    }
    uint64_t x = thread_random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    thread_random_state = x;
    return (int)((x * 0x2545f4914f6cdd1du) % WORLD_ROWS) + 1;
}

/* ------------------------------------------------------------ routes */

/* A JSON error the way the routes answer one; 500 when even that fails. */
static int answer_error(struct _u_response *response, unsigned int status, const char *message)
{
    json_t *body = json_pack("{s:s}", "error", message);
    if (body == NULL)
        return U_CALLBACK_ERROR;
    int set = ulfius_set_json_body_response(response, status, body);
    json_decref(body);
    return set == U_OK ? U_CALLBACK_CONTINUE : U_CALLBACK_ERROR;
}

static int get_json(const struct _u_request *request, struct _u_response *response, void *user_data)
{
    (void)request;
    (void)user_data;
    json_t *body = json_pack("{s:s}", "message", HELLO);
    if (body == NULL)
        return U_CALLBACK_ERROR;
    int set = ulfius_set_json_body_response(response, 200, body);
    json_decref(body);
    return set == U_OK ? U_CALLBACK_CONTINUE : U_CALLBACK_ERROR;
}

static int get_plaintext(const struct _u_request *request, struct _u_response *response, void *user_data)
{
    (void)request;
    (void)user_data;
    if (ulfius_set_string_body_response(response, 200, HELLO) != U_OK ||
        ulfius_add_header_to_response(response, "Content-Type", "text/plain") != U_OK)
        return U_CALLBACK_ERROR;
    return U_CALLBACK_CONTINUE;
}

/* PostgreSQL's text for an integer column into *out. */
static bool parse_integer(const char *text, int *out)
{
    if (text == NULL || *text == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < INT_MIN || value > INT_MAX)
        return false;
    *out = (int)value;
    return true;
}

static int get_db(const struct _u_request *request, struct _u_response *response, void *user_data)
{
    (void)request;
    (void)user_data;
    PGconn *conn = thread_database();
    if (conn == NULL)
        return answer_error(response, 503, "database unavailable");
    char id_text[16];
    snprintf(id_text, sizeof id_text, "%d", random_world_id());
    const char *params[1] = {id_text};
    PGresult *result = PQexecPrepared(conn, WORLD_STATEMENT, 1, params, NULL, NULL, 0);
    int id = 0, random_number = 0;
    bool ok = result != NULL && PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1 &&
              PQnfields(result) == 2 && parse_integer(PQgetvalue(result, 0, 0), &id) &&
              parse_integer(PQgetvalue(result, 0, 1), &random_number);
    if (!ok) {
        fprintf(stderr, "ulfius-peer: %s (id %s): %s", WORLD_STATEMENT, id_text,
                result != NULL && PQresultStatus(result) == PGRES_TUPLES_OK ? "not one world row\n"
                                                                            : PQerrorMessage(conn));
        PQclear(result);
        /* A broken connection is opened again on this thread's next /db. */
        if (PQstatus(conn) != CONNECTION_OK)
            drop_thread_connection();
        return answer_error(response, 503, "database error");
    }
    PQclear(result);
    json_t *body = json_pack("{s:i,s:i}", "id", id, "randomNumber", random_number);
    if (body == NULL)
        return U_CALLBACK_ERROR;
    int set = ulfius_set_json_body_response(response, 200, body);
    json_decref(body);
    return set == U_OK ? U_CALLBACK_CONTINUE : U_CALLBACK_ERROR;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *out)
{
    fprintf(out, "usage: ulfius-peer --port PORT [--database-url URL] [--threads N] [--address IPV4]\n"
                 "  --database-url  PostgreSQL URL for /db (default: $DATABASE_URL)\n"
                 "  --threads       libmicrohttpd pool threads (default: the CPU count)\n"
                 "  --address       IPv4 address to listen on (default: 127.0.0.1)\n");
}

static bool parse_count(const char *text, long low, long high, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high)
        return false;
    *out = value;
    return true;
}

int main(int argc, char **argv)
{
    long port = 0, threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *address = "127.0.0.1";
    database_url = getenv("DATABASE_URL");
    static const struct option options[] = {{"port", required_argument, NULL, 'p'},
                                            {"database-url", required_argument, NULL, 'd'},
                                            {"threads", required_argument, NULL, 't'},
                                            {"address", required_argument, NULL, 'a'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int option;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case 'p':
            if (!parse_count(optarg, 1, 65535, &port)) {
                fprintf(stderr, "ulfius-peer: --port: not a port: '%s'\n", optarg);
                return 2;
            }
            break;
        case 'd':
            database_url = optarg;
            break;
        case 't':
            if (!parse_count(optarg, 1, 1024, &threads)) {
                fprintf(stderr, "ulfius-peer: --threads: not 1..1024: '%s'\n", optarg);
                return 2;
            }
            break;
        case 'a':
            address = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || port == 0) {
        usage(stderr);
        return 2;
    }
    if (database_url == NULL || *database_url == '\0') {
        fprintf(stderr, "ulfius-peer: no database: give --database-url or set DATABASE_URL\n");
        return 2;
    }
    if (threads < 1)
        threads = 1;
    struct sockaddr_in bind_address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, address, &bind_address.sin_addr) != 1) {
        fprintf(stderr, "ulfius-peer: --address: not an IPv4 address: '%s'\n", address);
        return 2;
    }

    /* The pool threads inherit this mask, so the signals reach sigwait
     * below and never interrupt a request. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    int masked = pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    if (masked != 0) {
        fprintf(stderr, "ulfius-peer: pthread_sigmask: %s\n", strerror(masked));
        return 1;
    }

    struct _u_instance instance;
    if (ulfius_init_instance(&instance, (unsigned int)port, &bind_address, NULL) != U_OK) {
        fprintf(stderr, "ulfius-peer: ulfius_init_instance failed\n");
        return 1;
    }
    int status = 1;
    if (u_map_put(instance.default_headers, "Server", "ulfius") != U_OK ||
        ulfius_add_endpoint_by_val(&instance, "GET", "/json", NULL, 0, get_json, NULL) != U_OK ||
        ulfius_add_endpoint_by_val(&instance, "GET", "/plaintext", NULL, 0, get_plaintext, NULL) != U_OK ||
        ulfius_add_endpoint_by_val(&instance, "GET", "/db", NULL, 0, get_db, NULL) != U_OK) {
        fprintf(stderr, "ulfius-peer: setting up the routes failed\n");
        goto clean;
    }

    /* ulfius_start_framework would start a thread per connection; this is
     * its documented way to another libmicrohttpd mode. Its two callbacks
     * are required: the first builds ulfius' request, the second frees it. */
    struct MHD_OptionItem mhd_options[] = {
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)mhd_request_completed, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)ulfius_uri_logger, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &bind_address},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 10000, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ulfius_start_framework_with_mhd_options(&instance, flags, mhd_options) != U_OK) {
        fprintf(stderr, "ulfius-peer: cannot listen on %s:%ld\n", address, port);
        goto clean;
    }
    printf("ulfius-peer: listening on %s:%ld, %ld threads\n", address, port, threads);
    fflush(stdout);

    int received = 0;
    int waited = sigwait(&stop_signals, &received);
    if (waited != 0)
        fprintf(stderr, "ulfius-peer: sigwait: %s\n", strerror(waited));
    else
        printf("ulfius-peer: %s: stopping\n", strsignal(received));
    fflush(stdout);
    /* Joins the pool threads: no request runs after this. */
    if (ulfius_stop_framework(&instance) != U_OK)
        fprintf(stderr, "ulfius-peer: ulfius_stop_framework failed\n");
    else if (waited == 0)
        status = 0;
clean:
    connections_close_all();
    ulfius_clean_instance(&instance);
    return status;
}
