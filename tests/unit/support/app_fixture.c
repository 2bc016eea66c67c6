/* tests/unit/support/app_fixture.c: see app_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_fixture.h"

/* ---- what hooks and handlers leave behind ------------------------------- */

char trace[1024];

void note(const char *event)
{
    if (trace[0] != '\0')
        strncat(trace, " ", sizeof trace - strlen(trace) - 1);
    strncat(trace, event, sizeof trace - strlen(trace) - 1);
}

shoal_flow note_before(shoal_ctx *ctx, void *label)
{
    (void)ctx;
    note(label);
    return SHOAL_NEXT;
}

void note_after(shoal_ctx *ctx, void *label)
{
    (void)ctx;
    note(label);
}

void note_teardown(shoal_ctx *ctx, void *label)
{
    (void)ctx;
    note(label);
}

int answer_ok(shoal_ctx *ctx)
{
    note("handler");
    return shoal_json(ctx, 200, json_pack("{s:b}", "ok", 1));
}

int answer_409(shoal_ctx *ctx)
{
    note("handler");
    return shoal_error(ctx, 409, "article.exists", "slug", "already taken");
}

int labelled_error_handler(shoal_ctx *ctx, const shoal_error_info *error, void *label)
{
    note(label);
    return shoal_text(ctx, error->status, "text/plain", label, strlen(label));
}

/* ---- the fixture ---------------------------------------------------------- */

int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    fake_config_load(&f->config, NULL);
    f->app = shoal_app_new(&f->config);
    if (f->app == NULL)
        return -1;
    trace[0] = '\0';
    *state = f;
    return 0;
}

int teardown(void **state)
{
    fixture *f = *state;
    shoal_app_free(f->app);
    shoal_config_free(&f->config);
    free(f);
    return 0;
}

void serve(shoal_app *app)
{
    assert_int_equal(shoal_app_freeze(app), 0);
    assert_true(shoal_app_frozen(app));
}

fake_request *request(fixture *f, const char *method, const char *path)
{
    fake_request_init(&f->request, f->app, NULL, method, path);
    return &f->request;
}

fake_request *dispatch(fixture *f, const char *method, const char *path)
{
    fake_request *r = request(f, method, path);
    fake_request_dispatch(r);
    return r;
}

/* ---- extensions ------------------------------------------------------------ */

int extension_init_ok(shoal_app *app, void *data)
{
    (void)app;
    note(data);
    return 0;
}

void note_shutdown(shoal_app *app, void *data)
{
    (void)app;
    note(data);
}

void release_noted(void *state)
{
    char event[48];
    snprintf(event, sizeof event, "release:%s", (const char *)state);
    note(event);
    free(state);
}

int publish_labelled(shoal_app *app, const char *label)
{
    char *state = strdup(label);
    assert_non_null(state);
    return shoal_app_publish(app, label, state, release_noted);
}

void note_shutdown_with_state(shoal_app *app, void *data)
{
    const char *state = shoal_app_published(app, data);
    char event[48];
    snprintf(event, sizeof event, "shutdown:%s", state != NULL ? state : "(gone)");
    note(event);
}

int publish(shoal_app *app, void *data)
{
    return publish_labelled(app, data);
}

void *counter_create(shoal_app *app, void *data)
{
    (void)app;
    counter_instance *counter = calloc(1, sizeof *counter);
    if (counter != NULL)
        snprintf(counter->label, sizeof counter->label, "%s", (const char *)data);
    char event[48];
    snprintf(event, sizeof event, "create:%s", (const char *)data);
    note(event);
    return counter;
}

void counter_destroy(void *instance)
{
    counter_instance *counter = instance;
    char event[48];
    snprintf(event, sizeof event, "destroy:%s", counter->label);
    note(event);
    free(counter);
}

void counter_shutdown(shoal_app *app, void *instance)
{
    (void)app;
    char event[48];
    snprintf(event, sizeof event, "shutdown:%s", ((counter_instance *)instance)->label);
    note(event);
}

/* ---- the admin listener ------------------------------------------------------ */

fake_request *dispatch_admin(fixture *f, const char *method, const char *path)
{
    fake_request *r = request(f, method, path);
    r->ctx.listener = SHOAL_LISTENER_ADMIN;
    fake_request_dispatch(r);
    return r;
}
