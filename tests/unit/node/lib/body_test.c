/* tests/unit/node/lib/body_test.c: node/lib/body.c, JSON request bodies and their members. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "app_fixture.h"

static int echo_json_body(shoal_ctx *ctx)
{
    json_t *body = NULL;
    if (!shoal_json_body(ctx, &body))
        return 0;
    return shoal_json(ctx, 200, json_incref(body));
}

static fake_request *post_json(fixture *f, const char *content_type, const char *body)
{
    fake_request *r = request(f, "POST", "/echo");
    if (content_type != NULL)
        fake_request_header(r, "Content-Type", content_type);
    fake_request_body(r, body);
    fake_request_dispatch(r);
    return r;
}

static void serve_echo(fixture *f)
{
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/echo", echo_json_body), 0);
    serve(f->app);
}

static void test_json_body_is_parsed_and_owned_by_the_request(void **state)
{
    fixture *f = *state;
    serve_echo(f);

    fake_request *r = post_json(f, "application/json", "{\"article\": {\"title\": \"How to\", \"tags\": [1, 2]}}");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(fake_response_body(r), "{\"article\":{\"title\":\"How to\",\"tags\":[1,2]}}");
    fake_request_finish(r);
}

static void test_json_media_types_are_accepted(void **state)
{
    fixture *f = *state;
    serve_echo(f);
    static const char *const accepted[] = {NULL, "", "application/json", "Application/JSON",
                                           "application/json; charset=utf-8", "application/json ;charset=utf-8",
                                           "application/vnd.api+json", "application/merge-patch+json"};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        fake_request *r = post_json(f, accepted[i], "[true]");
        if (r->ctx.status != 200)
            fail_msg("Content-Type '%s' got %d", accepted[i] != NULL ? accepted[i] : "(none)", r->ctx.status);
        fake_request_finish(r);
    }
}

static void test_non_json_content_type_is_415(void **state)
{
    fixture *f = *state;
    serve_echo(f);
    static const char *const refused[] = {"text/plain", "application/jsonx", "application/x-www-form-urlencoded",
                                          "text/json", "application/+json", "multipart/form-data; boundary=json"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        fake_request *r = post_json(f, refused[i], "{}");
        assert_error_envelope(r, 415, "request.unsupported_media_type", "body");
        fake_request_finish(r);
    }
}

static void test_malformed_json_body_is_400(void **state)
{
    fixture *f = *state;
    serve_echo(f);
    static const char *const malformed[] = {"{", "{\"a\":1,}", "{'a':1}", "{\"a\":1,\"a\":2}", "[1] [2]",
                                            "\"\\u0000\"", "\"\xff\""};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        fake_request *r = post_json(f, "application/json", malformed[i]);
        assert_error_envelope(r, 400, "request.malformed_json", "body");
        fake_request_finish(r);
    }
}

static void test_empty_json_body_is_400(void **state)
{
    fixture *f = *state;
    serve_echo(f);

    fake_request *r = post_json(f, "application/json", NULL);
    assert_error_envelope(r, 400, "request.empty_body", "body");
    fake_request_finish(r);
    r = post_json(f, "application/json", " \r\n\t ");
    assert_error_envelope(r, 400, "request.empty_body", "body");
    fake_request_finish(r);
}

static void test_json_body_deeper_than_the_limit_is_400(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, (const char *const[]){"--max-json-depth", "3", NULL});
    shoal_app *app = shoal_app_new(&config);
    assert_int_equal(shoal_route(shoal_app_root(app), "POST", "/echo", echo_json_body), 0);
    assert_int_equal(shoal_app_freeze(app), 0);

    fake_request r;
    fake_request_init(&r, app, NULL, "POST", "/echo");
    fake_request_body(&r, "{\"a\":[{\"b\":1}]}");
    fake_request_dispatch(&r);
    assert_int_equal(r.ctx.status, 200);
    fake_request_finish(&r);

    fake_request_init(&r, app, NULL, "POST", "/echo");
    fake_request_body(&r, "{\"a\":[{\"b\":[]}]}");
    fake_request_dispatch(&r);
    assert_error_envelope(&r, 400, "request.json_too_deep", "body");
    fake_request_finish(&r);

    shoal_app_free(app);
    shoal_config_free(&config);
}

static int read_article(shoal_ctx *ctx)
{
    json_t *body, *article, *title, *count, *draft, *rating;
    if (!shoal_json_body(ctx, &body) ||
        !shoal_json_member(ctx, body, "article", JSON_OBJECT, true, &article) ||
        !shoal_json_member(ctx, article, "title", JSON_STRING, true, &title) ||
        !shoal_json_member(ctx, article, "count", JSON_INTEGER, false, &count) ||
        !shoal_json_member(ctx, article, "draft", JSON_TRUE, false, &draft) ||
        !shoal_json_member(ctx, article, "rating", JSON_REAL, false, &rating))
        return 0;
    return shoal_json(ctx, 200, json_pack("{s:s, s:b, s:b, s:b}", "title", json_string_value(title),
                                          "count", count != NULL, "draft", draft != NULL,
                                          "rating", rating != NULL));
}

static fake_request *post_article(fixture *f, const char *body)
{
    fake_request *r = request(f, "POST", "/articles");
    fake_request_header(r, "Content-Type", "application/json");
    fake_request_body(r, body);
    fake_request_dispatch(r);
    return r;
}

static void test_json_members_are_checked_by_type(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", read_article), 0);
    serve(f->app);

    fake_request *r = post_article(f, "{\"article\":{\"title\":\"T\"}}");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(fake_response_body(r), "{\"title\":\"T\",\"count\":false,\"draft\":false,\"rating\":false}");
    fake_request_finish(r);

    /* JSON_TRUE takes either boolean; JSON_REAL takes any number. */
    r = post_article(f, "{\"article\":{\"title\":\"T\",\"count\":3,\"draft\":false,\"rating\":4}}");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(fake_response_body(r), "{\"title\":\"T\",\"count\":true,\"draft\":true,\"rating\":true}");
    fake_request_finish(r);
}

static void test_missing_or_mistyped_json_member_is_422_naming_the_field(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", read_article), 0);
    serve(f->app);

    fake_request *r = post_article(f, "{\"article\":{}}");
    assert_error_envelope(r, 422, "request.missing_field", "title");
    fake_request_finish(r);

    r = post_article(f, "{\"article\":[]}");
    assert_error_envelope(r, 422, "request.invalid_field", "article");
    assert_non_null(strstr(fake_response_body(r), "must be an object"));
    fake_request_finish(r);

    r = post_article(f, "{\"article\":{\"title\":7}}");
    assert_error_envelope(r, 422, "request.invalid_field", "title");
    assert_non_null(strstr(fake_response_body(r), "must be a string"));
    fake_request_finish(r);

    r = post_article(f, "{\"article\":{\"title\":\"T\",\"count\":1.5}}");
    assert_error_envelope(r, 422, "request.invalid_field", "count");
    fake_request_finish(r);

    r = post_article(f, "{\"article\":{\"title\":\"T\",\"draft\":\"yes\"}}");
    assert_error_envelope(r, 422, "request.invalid_field", "draft");
    fake_request_finish(r);

    /* A non-object body has no members at all. */
    r = post_article(f, "[1]");
    assert_error_envelope(r, 422, "request.missing_field", "article");
    fake_request_finish(r);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_json_body_is_parsed_and_owned_by_the_request),
        TEST(test_json_media_types_are_accepted),
        TEST(test_non_json_content_type_is_415),
        TEST(test_malformed_json_body_is_400),
        TEST(test_empty_json_body_is_400),
        cmocka_unit_test(test_json_body_deeper_than_the_limit_is_400),
        TEST(test_json_members_are_checked_by_type),
        TEST(test_missing_or_mistyped_json_member_is_422_naming_the_field),
    };
    return cmocka_run_group_tests_name("node/lib/body", tests, NULL, NULL);
}
