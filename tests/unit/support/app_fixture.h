/* tests/unit/support/app_fixture.h: the fixture and helpers the unit tests
 * of node/lib's app, app_lifecycle, worker, ctx, answer, body and pipeline
 * (and metrics_registry's setup) share: a fresh app per test, requests
 * through the fake transport (fake_request.h), and hooks, handlers and
 * extensions that note what ran in `trace`.
 * Include after cmocka.h: the helpers assert with cmocka. */
#ifndef SHOAL_UNIT_APP_FIXTURE_H
#define SHOAL_UNIT_APP_FIXTURE_H

#include "fake_request.h"

/* ---- what hooks and handlers leave behind ------------------------------- */

/* The events noted so far, separated by spaces; setup empties it. */
extern char trace[1024];

void note(const char *event);

/* Hooks that note their label (the hook's data). */
shoal_flow note_before(shoal_ctx *ctx, void *label);
void note_after(shoal_ctx *ctx, void *label);
void note_teardown(shoal_ctx *ctx, void *label);

/* Note "handler", then answer 200 {"ok":true} or 409 article.exists (slug). */
int answer_ok(shoal_ctx *ctx);
int answer_409(shoal_ctx *ctx);

/* Answers with its label as the body, so tests see which handler answered. */
int labelled_error_handler(shoal_ctx *ctx, const shoal_error_info *error, void *label);

/* ---- the fixture ---------------------------------------------------------- */

typedef struct fixture {
    shoal_config config;
    shoal_app *app;
    fake_request request;
} fixture;

/* cmocka's setup and teardown: a fixture with a new app, not frozen. */
int setup(void **state);
int teardown(void **state);

/* Freezes app (asserting it), as serving does. */
void serve(shoal_app *app);

/* Starts a request; the caller may add headers or a body, then dispatch. */
fake_request *request(fixture *f, const char *method, const char *path);

fake_request *dispatch(fixture *f, const char *method, const char *path);

/* The same on the admin listener. */
fake_request *dispatch_admin(fixture *f, const char *method, const char *path);

/* ---- extensions ------------------------------------------------------------ */

/* An init that notes its data; a shutdown that notes its data. */
int extension_init_ok(shoal_app *app, void *data);
void note_shutdown(shoal_app *app, void *data);

/* Published state that notes its release; its label is its name. */
void release_noted(void *state);

int publish_labelled(shoal_app *app, const char *label);

/* An init that publishes a copy of its data (a label) under that label. */
int publish(shoal_app *app, void *data);

/* A shutdown still finds its extension's published state. */
void note_shutdown_with_state(shoal_app *app, void *data);

/* A user's extension with an instance: a counter of the requests its app
 * served, labelled with the extension's data. */
typedef struct counter_instance {
    char label[16];
    int requests;
    int hook_calls; /* the before hook, which gets the instance as its data */
} counter_instance;

/* create, destroy and shutdown of such an extension, each noting its label. */
void *counter_create(shoal_app *app, void *data);
void counter_destroy(void *instance);
void counter_shutdown(shoal_app *app, void *instance);

#endif
