/* tests/fuzz/node/services/conduit/request_fuzz.c: whole requests through the node's
 * pipeline against the real PostgreSQL and Redis of the "tiers" fixture
 * (SHOAL_TEST_DATABASE_URL, SHOAL_TEST_REDIS_URL).
 *
 * The input is a request in the text form of tests/fuzz/support (method
 * and target, headers, an empty line, the body), through every extension
 * main.c loads and the real handlers, statements and cache; fuzz_dispatch
 * aborts on a 500 or any 5xx but 503 with Retry-After, on an error that is
 * not the JSON envelope and on JSON that does not parse.
 *
 * So that the fuzzer gets past authentication, the target signs up a user
 * of its own at start, with an article and a comment, and replaces these
 * placeholders in every input:
 *   $TOKEN    a valid session token of that user ("Authorization: Token $TOKEN")
 *   $USER     the user's name            $EMAIL   the user's email
 *   $SLUG     the slug of the user's article
 *   $COMMENT  the id of the user's comment on it
 * Inputs may log the user out, rename him, change his password or delete
 * the article; after any input that could change them, the target checks
 * them and signs up afresh when one is gone. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shoal/store.h>

#include "demo_migrations.h"
#include "fuzz_request.h"

static fuzz_node node;
static unsigned generation;
static char token[256], user[64], email[96], slug[256], comment[32];

static const char *require(const char *name)
{
    const char *value = getenv(name);
    if (value == NULL || *value == '\0')
        fuzz_fail("%s is not set: run through ctest (the tiers fixture) or see docs/testing.md#fuzzing", name);
    return value;
}

static json_t *call(const char *text, int expected_status)
{
    fuzz_field substitutions[] = {{"$TOKEN", token}, {"$USER", user}, {"$EMAIL", email}, {"$SLUG", slug}};
    fuzz_request request;
    if (!fuzz_request_parse(&request, (const uint8_t *)text, strlen(text), substitutions, 4))
        fuzz_fail("setup: cannot parse %s", text);
    fuzz_answer answer;
    fuzz_dispatch(&node, &request, &answer);
    if (answer.status != expected_status)
        fuzz_fail("setup: %s answered %d: %s", text, answer.status, answer.body);
    json_t *body = json_loadb(answer.body, answer.body_length, 0, NULL);
    fuzz_answer_free(&answer);
    fuzz_request_free(&request);
    return body;
}

static void copy_string(char *out, size_t size, json_t *value, const char *what)
{
    if (!json_is_string(value))
        fuzz_fail("setup: no %s in the answer", what);
    snprintf(out, size, "%s", json_string_value(value));
}

/* A user of this process and generation, his article and a comment. */
static void sign_up(void)
{
    generation++;
    snprintf(user, sizeof user, "fuzz%ld-%u", (long)getpid(), generation);
    snprintf(email, sizeof email, "%s@example.com", user);
    char text[1024];
    snprintf(text, sizeof text,
             "POST /api/users\nContent-Type: application/json\n\n"
             "{\"user\":{\"username\":\"%s\",\"email\":\"%s\",\"password\":\"fuzzing-password\"}}",
             user, email);
    json_t *body = call(text, 201);
    copy_string(token, sizeof token, json_object_get(json_object_get(body, "user"), "token"), "token");
    json_decref(body);

    body = call("POST /api/articles\nAuthorization: Token $TOKEN\nContent-Type: application/json\n\n"
                "{\"article\":{\"title\":\"Fuzzing $USER\",\"description\":\"d\",\"body\":\"b\",\"tagList\":[\"fuzz\"]}}",
                201);
    copy_string(slug, sizeof slug, json_object_get(json_object_get(body, "article"), "slug"), "slug");
    json_decref(body);

    body = call("POST /api/articles/$SLUG/comments\nAuthorization: Token $TOKEN\n\n{\"comment\":{\"body\":\"c\"}}",
                201);
    json_t *id = json_object_get(json_object_get(body, "comment"), "id");
    if (!json_is_integer(id))
        fuzz_fail("setup: no comment id");
    snprintf(comment, sizeof comment, "%lld", (long long)json_integer_value(id));
    json_decref(body);
}

/* True when the token, the name and the article still hold. */
static bool state_holds(void)
{
    fuzz_field substitutions[] = {{"$TOKEN", token}, {"$SLUG", slug}};
    static const char *const checks[] = {"GET /api/user\nAuthorization: Token $TOKEN\n", "GET /api/articles/$SLUG\n"};
    bool holds = true;
    for (size_t i = 0; i < 2 && holds; i++) {
        fuzz_request request;
        if (!fuzz_request_parse(&request, (const uint8_t *)checks[i], strlen(checks[i]), substitutions, 2))
            fuzz_fail("cannot parse %s", checks[i]);
        fuzz_answer answer;
        fuzz_dispatch(&node, &request, &answer);
        holds = answer.status == 200;
        if (holds && i == 0) {
            json_t *body = json_loadb(answer.body, answer.body_length, 0, NULL);
            const char *name = json_string_value(json_object_get(json_object_get(body, "user"), "username"));
            holds = name != NULL && strcmp(name, user) == 0;
            json_decref(body);
        }
        fuzz_answer_free(&answer);
        fuzz_request_free(&request);
    }
    return holds;
}

static void migrate(const char *database_url)
{
    store_config config = {.conninfo = database_url, .connect_timeout_s = 5};
    store_migrate_report report[2];
    char error[512] = "";
    if (shoal_demo_migrate(&config, report, error, sizeof error) != STORE_OK)
        fuzz_fail("migrate: %s", error);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keep_stderr();
    const char *database_url = require("SHOAL_TEST_DATABASE_URL");
    migrate(database_url);
    fuzz_node_open(&node, database_url, require("SHOAL_TEST_REDIS_URL"), NULL);
    sign_up();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_field substitutions[] = {
        {"$TOKEN", token}, {"$USER", user}, {"$EMAIL", email}, {"$SLUG", slug}, {"$COMMENT", comment},
    };
    fuzz_request request;
    if (fuzz_request_parse(&request, data, size, substitutions, sizeof substitutions / sizeof substitutions[0])) {
        fuzz_dispatch(&node, &request, NULL);
        /* Reads change nothing the placeholders name. */
        bool read_only = strcmp(request.method, "GET") == 0 || strcmp(request.method, "HEAD") == 0 ||
                         strcmp(request.method, "OPTIONS") == 0;
        if (!read_only && !state_holds())
            sign_up();
    }
    fuzz_request_free(&request);
    return 0;
}
